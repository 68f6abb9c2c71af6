// Where audit records live. Two implementations of one contract: SQLite (embedded, in the data
// directory, zero setup) and PostgreSQL (production, shared by several replicas). Inserts are
// idempotent by request id, so a batch retried after an ambiguous failure never duplicates.
import type { AuditQuery } from './query.ts'
import type { AuditRecord } from './record.ts'
import type { SessionQuery, SessionRecord } from '../sessions/record.ts'
import type { ApprovalRepository } from '../approval/repository.ts'

export interface AuditStore extends ApprovalRepository {
  readonly kind: 'sqlite' | 'postgres'
  /** A human-readable location (file path, or host/database/schema; never a password). */
  readonly location: string
  /** Applies pending migrations (idempotent; safe when several replicas start at once). */
  migrate(): Promise<void>
  insert(records: readonly AuditRecord[]): Promise<void>
  /** Newest first. */
  query(q: AuditQuery): Promise<AuditRecord[]>
  get(id: string): Promise<AuditRecord | undefined>
  count(q?: AuditQuery): Promise<number>
  /** Removes records received before `timeMs`; returns how many. */
  deleteBefore(timeMs: number): Promise<number>
  /** Inserts or replaces a session record (written when a session starts and when it ends). */
  saveSession(session: SessionRecord): Promise<void>
  getSession(id: string): Promise<SessionRecord | undefined>
  /** Newest first. */
  querySessions(q: SessionQuery): Promise<SessionRecord[]>
  /**
   * Shared stores only (PostgreSQL): asks every replica to end a live session; the one relaying
   * it does. Absent on SQLite, where one process relays everything.
   */
  broadcastSessionKill?(id: string, by: string): Promise<void>
  /** Shared stores only: calls `handler` for every kill broadcast; returns the unsubscribe. */
  onSessionKill?(handler: (id: string, by: string) => void): Promise<() => Promise<void>>
  /** Shared stores only: tells every replica that an approval changed (a decision, an expiry). */
  broadcastApprovalChange?(id: string): Promise<void>
  /** Shared stores only: calls `handler` for every approval change; returns the unsubscribe. */
  onApprovalChange?(handler: (id: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}
