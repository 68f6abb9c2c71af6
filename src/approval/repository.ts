// The approvals' tables and their SQL, one implementation for SQLite and PostgreSQL, and the
// change notification that wakes requests held on other replicas. Inboxes are queried in the store, by state and by approver set: every
// distinct `approvers` list of a rule is kept once in `approval_approver_sets`, a person's
// visible sets are matched in code (subjects are globs over names, groups, claims), and the
// approvals are then selected by set key with a page and a count. No inbox loads "the newest N"
// and filters, so no flood of other requests pushes a pending one out of sight.
import { createHash } from 'node:crypto'
import type { PolicySubject } from '../policy/schema.ts'
import { filterClause, type Database, type Migration } from '../store/index.ts'
import { approvalQuerySchema, type ApprovalQuery, type ApprovalRecord } from './record.ts'

/** Versions 3 and 4 of the one migration history (src/stores.ts lists every domain's). */
export const APPROVAL_MIGRATIONS: readonly Migration[] = [
  {
    version: 3,
    description: 'approvals (requests held for people to approve)',
    statements: [
      `CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        identity TEXT NOT NULL,
        cluster TEXT NOT NULL,
        namespace TEXT NOT NULL,
        state TEXT NOT NULL,
        binding TEXT NOT NULL,
        version INTEGER NOT NULL,
        record TEXT NOT NULL
      )`,
      'CREATE INDEX approvals_binding_state ON approvals (binding, state)',
      'CREATE INDEX approvals_state_expires ON approvals (state, expires_ms)',
      'CREATE INDEX approvals_created ON approvals (created_ms)',
    ],
  },
  {
    version: 4,
    description:
      'approvals by approver set and requester (inboxes in the store, per-identity limits)',
    statements: [
      "ALTER TABLE approvals ADD COLUMN approvers TEXT NOT NULL DEFAULT ''",
      'CREATE TABLE approval_approver_sets (set_key TEXT PRIMARY KEY, approvers TEXT NOT NULL)',
      'CREATE INDEX approvals_state_approvers_created ON approvals (state, approvers, created_ms)',
      'CREATE INDEX approvals_identity_state ON approvals (identity, state)',
    ],
  },
]

/** The notification channel of changes (PostgreSQL: `gatehouse_approval_<schema>`). */
const CHANGE_CHANNEL = 'approval'

export interface ApproverSet {
  key: string
  approvers: PolicySubject[]
}

export interface ApprovalRepository {
  insertApproval(a: ApprovalRecord): Promise<void>
  /** Compare-and-set: replaces the row only when its version is still `a.version - 1`. */
  updateApproval(a: ApprovalRecord): Promise<boolean>
  getApproval(id: string): Promise<ApprovalRecord | undefined>
  /** Newest first. */
  queryApprovals(q: ApprovalQuery): Promise<ApprovalRecord[]>
  /** How many approvals match (limit and offset ignored). */
  countApprovals(q: ApprovalQuery): Promise<number>
  /** Every distinct approver list approvals were created with. */
  approverSets(): Promise<ApproverSet[]>
  /** Removes decided approvals created before `timeMs` (pending ones stay); returns how many. */
  deleteBefore(timeMs: number): Promise<number>
  /** Tells every replica (this one included) that an approval changed (a decision, an expiry). */
  broadcastApprovalChange(id: string): Promise<void>
  /** Calls `handler` for every approval change; resolves to the unsubscribe. */
  onApprovalChange(handler: (id: string) => void): Promise<() => Promise<void>>
}

/** The key of an approver list: equal lists (same subjects in the same order) share one. */
export function approverSetKey(approvers: readonly PolicySubject[]): string {
  return createHash('sha256').update(JSON.stringify(approvers)).digest('hex').slice(0, 32)
}

const COLUMNS = [
  'id',
  'created_ms',
  'expires_ms',
  'identity',
  'cluster',
  'namespace',
  'state',
  'binding',
  'version',
  'approvers',
  'record',
] as const

function row(a: ApprovalRecord): unknown[] {
  return [
    a.id,
    Date.parse(a.createdAt),
    Date.parse(a.expiresAt),
    a.requester.name,
    a.cluster,
    a.request.namespace,
    a.state,
    a.binding,
    a.version,
    approverSetKey(a.settings.approvers),
    JSON.stringify(a),
  ]
}

function where(
  q: ReturnType<typeof approvalQuerySchema.parse>,
  ph: (i: number) => string,
): { sql: string; params: unknown[] } {
  const base = filterClause(q, ['cluster', 'namespace', 'state', 'binding'], 'created_ms', ph)
  const parts = base.sql ? [base.sql.replace(/^WHERE /, '')] : []
  const params = [...base.params]
  const p = (v: unknown): string => {
    params.push(v)
    return ph(params.length - 1)
  }
  if (q.decided) parts.push(`state != ${p('pending')}`)
  if (q.expiresAfterMs !== undefined) parts.push(`expires_ms > ${p(q.expiresAfterMs)}`)
  if (q.expiresByMs !== undefined) parts.push(`expires_ms <= ${p(q.expiresByMs)}`)
  if (q.visibleTo) {
    const alternatives = q.visibleTo.approverSets.length
      ? [`approvers IN (${q.visibleTo.approverSets.map((k) => p(k)).join(', ')})`]
      : []
    if (q.visibleTo.requester !== undefined)
      alternatives.push(`identity = ${p(q.visibleTo.requester)}`)
    parts.push(alternatives.length ? `(${alternatives.join(' OR ')})` : '1 = 0')
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params }
}

/**
 * Approvals are written with `run`, not `write`: they are rare, and a compare-and-set must see
 * its own result at once (SQLite's writer thread queues).
 */
export function approvalRepository(db: Database): ApprovalRepository {
  const ph = (i: number): string => db.placeholder(i)
  const parse = (r: { record: string }): ApprovalRecord => JSON.parse(r.record) as ApprovalRecord
  return {
    async insertApproval(a) {
      const set = approverSetKey(a.settings.approvers)
      await db.run(
        `INSERT INTO approval_approver_sets (set_key, approvers) VALUES (${ph(0)}, ${ph(1)}) ON CONFLICT (set_key) DO NOTHING`,
        [set, JSON.stringify(a.settings.approvers)],
      )
      await db.run(
        `INSERT INTO approvals (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => ph(i)).join(', ')})`,
        row(a),
      )
    },
    async updateApproval(a) {
      const n = await db.run(
        `UPDATE approvals SET state = ${ph(0)}, version = ${ph(1)}, record = ${ph(2)} WHERE id = ${ph(3)} AND version = ${ph(4)}`,
        [a.state, a.version, JSON.stringify(a), a.id, a.version - 1],
      )
      return n === 1
    },
    async getApproval(id) {
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM approvals WHERE id = ${ph(0)}`,
        [id],
      )
      return rows[0] ? parse(rows[0]) : undefined
    },
    async queryApprovals(input) {
      const q = approvalQuerySchema.parse(input)
      const { sql, params } = where(q, ph)
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM approvals ${sql} ORDER BY created_ms DESC, id DESC LIMIT ${ph(params.length)} OFFSET ${ph(params.length + 1)}`,
        [...params, q.limit, q.offset],
      )
      return rows.map(parse)
    },
    async countApprovals(input) {
      const { sql, params } = where(approvalQuerySchema.parse(input), ph)
      const rows = await db.all<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM approvals ${sql}`,
        params,
      )
      return Number(rows[0]?.n ?? 0)
    },
    async approverSets() {
      const rows = await db.all<{ set_key: string; approvers: string }>(
        'SELECT set_key, approvers FROM approval_approver_sets',
        [],
      )
      return rows.map((r) => ({
        key: r.set_key,
        approvers: JSON.parse(r.approvers) as PolicySubject[],
      }))
    },
    deleteBefore(timeMs) {
      // pending approvals stay, however old: someone may still decide (they expire on their own)
      return db.write(`DELETE FROM approvals WHERE created_ms < ${ph(0)} AND state != ${ph(1)}`, [
        timeMs,
        'pending',
      ])
    },
    async broadcastApprovalChange(id) {
      await db.notify(CHANGE_CHANNEL, id)
    },
    onApprovalChange(handler) {
      return db.listen(CHANGE_CHANNEL, handler)
    },
  }
}
