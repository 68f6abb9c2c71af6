// Which repositories over which database: the one database gatehouse.yaml names (`audit.store`:
// SQLite in the data directory, or PostgreSQL shared by replicas), every domain's migrations in
// one history, and one repository per domain over it. Domains import src/store/; only this file
// knows that audit records, sessions and approvals share a database.
import { join } from 'node:path'
import { APPROVAL_MIGRATIONS, approvalRepository } from './approval/repository.ts'
import type { ApprovalRepository } from './approval/repository.ts'
import { AUDIT_MIGRATIONS, auditRepository, type AuditRepository } from './audit/repository.ts'
import type { AuditConfig } from './config/index.ts'
import { SESSION_MIGRATIONS, sessionRepository } from './sessions/repository.ts'
import type { SessionRepository } from './sessions/repository.ts'
import {
  openDatabase,
  openPostgres,
  openSqlite,
  type Database,
  type Expiring,
  type Migration,
  type PostgresOptions,
} from './store/index.ts'

/**
 * The migration history, in order. Versions are never renumbered or edited once released:
 * existing databases have applied them (1 audit records, 2 sessions, 3-4 approvals). A new
 * table takes the next version, in the repository that owns it.
 */
export const MIGRATIONS: readonly Migration[] = [
  ...AUDIT_MIGRATIONS,
  ...SESSION_MIGRATIONS,
  ...APPROVAL_MIGRATIONS,
]

export interface Stores {
  readonly database: Database
  readonly audit: AuditRepository
  readonly sessions: SessionRepository
  readonly approvals: ApprovalRepository
  /** What retention expires, in order. */
  readonly expiring: readonly Expiring[]
  /** Applies MIGRATIONS (idempotent; safe when several replicas start at once). */
  migrate(): Promise<void>
  close(): Promise<void>
}

export function storesOver(database: Database): Stores {
  const audit = auditRepository(database)
  const sessions = sessionRepository(database)
  const approvals = approvalRepository(database)
  return {
    database,
    audit,
    sessions,
    approvals,
    expiring: [audit, sessions, approvals],
    migrate: () => database.migrate(MIGRATIONS),
    close: () => database.close(),
  }
}

/** The database of `audit.store`; `readonly` for readers such as the CLI (SQLite only). */
export function storesFromConfig(
  audit: AuditConfig,
  dataDir: string,
  opts: { readonly?: boolean } = {},
): Stores {
  const { sqlite, postgres } = audit.store
  return storesOver(
    openDatabase(
      postgres
        ? { postgres }
        : { sqlite: { path: sqlite?.path ?? join(dataDir, 'audit.db'), ...opts } },
    ),
  )
}

export function sqliteStores(path: string, opts: { readonly?: boolean } = {}): Stores {
  return storesOver(openSqlite(path, opts))
}

export function postgresStores(opts: PostgresOptions): Stores {
  return storesOver(openPostgres(opts))
}
