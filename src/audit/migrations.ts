// One schema and one migration history for SQLite and PostgreSQL: portable DDL only (TEXT,
// BIGINT, INTEGER, DOUBLE PRECISION), applied in order at start, each version once. The whole
// record is kept as JSON text; the columns beside it exist to filter and to expire.
export interface Migration {
  version: number
  description: string
  statements: string[]
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'audit records',
    statements: [
      `CREATE TABLE audit_records (
        id TEXT PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        identity TEXT,
        cluster TEXT,
        namespace TEXT,
        verb TEXT,
        resource TEXT,
        decision TEXT NOT NULL,
        response_code INTEGER NOT NULL,
        record TEXT NOT NULL
      )`,
      'CREATE INDEX audit_records_time ON audit_records (time_ms)',
      'CREATE INDEX audit_records_identity_time ON audit_records (identity, time_ms)',
      'CREATE INDEX audit_records_cluster_namespace_time ON audit_records (cluster, namespace, time_ms)',
    ],
  },
  {
    version: 2,
    description: 'sessions (exec, attach, port-forward, followed logs)',
    statements: [
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT,
        identity TEXT,
        cluster TEXT,
        namespace TEXT,
        pod TEXT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        replica TEXT NOT NULL,
        record TEXT NOT NULL
      )`,
      'CREATE INDEX sessions_start ON sessions (start_ms)',
      'CREATE INDEX sessions_state_replica ON sessions (state, replica)',
      'CREATE INDEX sessions_identity_start ON sessions (identity, start_ms)',
    ],
  },
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

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`

/** The columns of a record row, in insert order. */
export function recordRow(r: import('./record.ts').AuditRecord): unknown[] {
  return [
    r.id,
    Date.parse(r.time),
    r.identity?.name ?? null,
    r.cluster,
    r.request?.namespace ?? null,
    r.request?.verb ?? null,
    r.request?.resource ?? null,
    r.decision?.action ?? 'none',
    r.response.code,
    JSON.stringify(r),
  ]
}

export const RECORD_COLUMNS = [
  'id',
  'time_ms',
  'identity',
  'cluster',
  'namespace',
  'verb',
  'resource',
  'decision',
  'response_code',
  'record',
] as const
