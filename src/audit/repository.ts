// The audit records' table and its SQL: one row per request, the whole record as JSON text
// beside the columns to filter on and to expire. Inserts are idempotent by request id, so a
// batch the AuditWriter retries after an ambiguous failure never duplicates.
import { filterClause, type BatchTable, type Database, type Migration } from '../store/index.ts'
import { auditQuerySchema, type AuditQuery } from './query.ts'
import type { AuditRecord } from './record.ts'

/** Version 1 of the one migration history (src/stores.ts lists every domain's). */
export const AUDIT_MIGRATIONS: readonly Migration[] = [
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
]

export interface AuditRepository {
  /** Where the records are (file path, or host/database/schema; never a password). */
  readonly location: string
  insert(records: readonly AuditRecord[]): Promise<void>
  /** Newest first. */
  query(q: AuditQuery): Promise<AuditRecord[]>
  get(id: string): Promise<AuditRecord | undefined>
  count(q?: AuditQuery): Promise<number>
  /** Removes records received before `timeMs`; returns how many. */
  deleteBefore(timeMs: number): Promise<number>
}

const TABLE: BatchTable = {
  name: 'audit_records',
  columns: [
    ['id', 'TEXT'],
    ['time_ms', 'BIGINT'],
    ['identity', 'TEXT'],
    ['cluster', 'TEXT'],
    ['namespace', 'TEXT'],
    ['verb', 'TEXT'],
    ['resource', 'TEXT'],
    ['decision', 'TEXT'],
    ['response_code', 'INTEGER'],
    ['record', 'TEXT'],
  ],
  key: 'id',
}

/** The columns of a record row, in TABLE's order. */
function recordRow(r: AuditRecord): unknown[] {
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

function whereClause(
  q: AuditQuery,
  placeholder: (i: number) => string,
): { sql: string; params: unknown[] } {
  const shadow = q.decision?.startsWith('shadow') ? q.decision : undefined
  const clause = filterClause(
    shadow ? { ...q, decision: undefined } : q,
    ['cluster', 'namespace', 'verb', 'resource', 'decision'],
    'time_ms',
    placeholder,
  )
  if (!shadow) return clause
  // The shadow outcome has no column: matched in the record's JSON, where the decision reads
  // "shadow":{"action":"deny",... (a string value cannot: its quotes are escaped as \").
  const action = shadow === 'shadow' ? '' : `${shadow.slice('shadow-'.length)}"`
  const like = `record LIKE ${placeholder(clause.params.length)}`
  return {
    sql: clause.sql ? `${clause.sql} AND ${like}` : `WHERE ${like}`,
    params: [...clause.params, `%"shadow":{"action":"${action}%`],
  }
}

export function auditRepository(db: Database): AuditRepository {
  const ph = (i: number): string => db.placeholder(i)
  const parse = (row: { record: string }): AuditRecord => JSON.parse(row.record) as AuditRecord
  return {
    location: db.location,
    async insert(records) {
      // Built here, inside the promise: a record that cannot be serialised rejects the batch.
      await db.insertBatch(TABLE, records.map(recordRow))
    },
    async query(input) {
      const q = auditQuerySchema.parse(input)
      const { sql, params } = whereClause(q, ph)
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM audit_records ${sql} ORDER BY time_ms DESC, id DESC LIMIT ${ph(params.length)}`,
        [...params, q.limit],
      )
      return rows.map(parse)
    },
    async get(id) {
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM audit_records WHERE id = ${ph(0)}`,
        [id],
      )
      return rows[0] ? parse(rows[0]) : undefined
    },
    async count(input = {}) {
      const { sql, params } = whereClause(auditQuerySchema.parse(input), ph)
      const rows = await db.all<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM audit_records ${sql}`,
        params,
      )
      return Number(rows[0]?.n ?? 0)
    },
    deleteBefore(timeMs) {
      return db.write(`DELETE FROM audit_records WHERE time_ms < ${ph(0)}`, [timeMs])
    },
  }
}
