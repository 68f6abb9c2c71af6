// The shared audit store: PostgreSQL, for production and for several Gatehouse replicas. A batch
// is one INSERT of a JSON array (one round trip whatever its size); migrations take an advisory
// lock so replicas starting together apply each version once.
import pg from 'pg'
import { MIGRATIONS, MIGRATIONS_TABLE, RECORD_COLUMNS, recordRow } from './migrations.ts'
import { storableParams, storableText } from './storable.ts'
import { auditQuerySchema, whereClause } from './query.ts'
import type { AuditRecord } from './record.ts'
import type { AuditStore } from './store.ts'
import {
  sessionQuerySchema,
  sessionRow,
  sessionUpsertSql,
  sessionWhereClause,
  type SessionRecord,
} from '../sessions/record.ts'
import { approvalRepository } from '../approval/repository.ts'

/** Arbitrary, fixed: the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK = 0x6761_7465

export interface PostgresStoreOptions {
  connectionString: string
  /** The schema holding Gatehouse's tables (created when missing). */
  schema: string
  /** Per query, so an unreachable database fails a batch instead of hanging it. */
  statementTimeoutMs?: number
  connectTimeoutMs?: number
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/** host:port/database (schema) without credentials, for logs. */
function describe(connectionString: string, schema: string): string {
  try {
    const u = new URL(connectionString)
    return `postgres://${u.host}${u.pathname} (schema ${schema})`
  } catch {
    return `postgres (schema ${schema})`
  }
}

/**
 * LISTENs on `channel` over one dedicated connection and calls `handler` with each payload;
 * a dropped connection is re-established (notifications sent while it was down are lost, so
 * callers that must not miss one also poll). Resolves to the unsubscribe.
 */
async function listen(
  opts: PostgresStoreOptions,
  channel: string,
  handler: (payload: string) => void,
): Promise<() => Promise<void>> {
  let client: pg.Client | undefined
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  const connect = async (): Promise<void> => {
    const c = new pg.Client({
      connectionString: opts.connectionString,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    })
    c.on('notification', (n) => {
      if (n.channel !== channel || !n.payload) return
      try {
        handler(n.payload)
      } catch {
        // not ours: ignored
      }
    })
    const reconnect = (): void => {
      c.removeAllListeners('error')
      c.on('error', () => undefined)
      void c.end().catch(() => undefined)
      if (!stopped) retry = setTimeout(() => void connect().catch(reconnect), 1000).unref()
    }
    c.on('error', reconnect)
    await c.connect()
    await c.query(`LISTEN ${quoteIdent(channel)}`)
    client = c
  }
  await connect()
  return async () => {
    stopped = true
    clearTimeout(retry)
    await client?.end().catch(() => undefined)
  }
}

export function openPostgresStore(opts: PostgresStoreOptions): AuditStore {
  const schema = quoteIdent(opts.schema)
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: 4,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 15_000,
    query_timeout: opts.statementTimeoutMs ?? 15_000,
    options: `-c search_path=${opts.schema}`,
  })
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined)
  // Every bound string made storable (U+0000, lone surrogates): see storable.ts.
  const exec = <R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> => pool.query<R>(sql, storableParams(params))
  const parse = (row: { record: string } | undefined): AuditRecord | undefined =>
    row ? (JSON.parse(row.record) as AuditRecord) : undefined
  const columns = RECORD_COLUMNS.join(', ')
  /** Per schema: replicas of one deployment hear each other, other deployments do not. */
  const killChannel = `gatehouse_session_kill_${opts.schema}`
  const approvalChannel = `gatehouse_approval_${opts.schema}`

  return {
    kind: 'postgres',
    location: describe(opts.connectionString, opts.schema),
    async migrate() {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
        await client.query(`SET LOCAL search_path TO ${schema}`)
        await client.query(MIGRATIONS_TABLE)
        const { rows } = await client.query<{ version: number }>(
          'SELECT version FROM gatehouse_schema_migrations',
        )
        const applied = new Set(rows.map((r) => Number(r.version)))
        for (const m of MIGRATIONS) {
          if (applied.has(m.version)) continue
          for (const s of m.statements) await client.query(s)
          await client.query(
            'INSERT INTO gatehouse_schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)',
            [m.version, m.description, new Date().toISOString()],
          )
        }
        await client.query('COMMIT')
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw e
      } finally {
        client.release()
      }
    },
    async insert(records) {
      if (records.length === 0) return
      const rows = records.map(recordRow)
      await exec(
        `INSERT INTO audit_records (${columns})
         SELECT * FROM json_to_recordset($1::json) AS x(id text, time_ms bigint, identity text,
           cluster text, namespace text, verb text, resource text, decision text,
           response_code integer, record text)
         ON CONFLICT (id) DO NOTHING`,
        [
          JSON.stringify(
            rows.map((r) =>
              Object.fromEntries(
                RECORD_COLUMNS.map((c, i) => {
                  const v = r[i]
                  return [c, typeof v === 'string' ? storableText(v) : v]
                }),
              ),
            ),
          ),
        ],
      )
    },
    async query(input) {
      const q = auditQuerySchema.parse(input)
      const { sql, params } = whereClause(q, (i) => `$${i + 1}`)
      const { rows } = await exec<{ record: string }>(
        `SELECT record FROM audit_records ${sql} ORDER BY time_ms DESC, id DESC LIMIT $${params.length + 1}`,
        [...params, q.limit],
      )
      return rows.map((r) => parse(r)!)
    },
    async get(id) {
      const { rows } = await exec<{ record: string }>(
        'SELECT record FROM audit_records WHERE id = $1',
        [id],
      )
      return parse(rows[0])
    },
    async count(input = {}) {
      const { sql, params } = whereClause(auditQuerySchema.parse(input), (i) => `$${i + 1}`)
      const { rows } = await exec<{ n: string }>(
        `SELECT COUNT(*) AS n FROM audit_records ${sql}`,
        params,
      )
      return Number(rows[0]!.n)
    },
    async deleteBefore(timeMs) {
      const r = await exec('DELETE FROM audit_records WHERE time_ms < $1', [timeMs])
      const s = await exec("DELETE FROM sessions WHERE start_ms < $1 AND state != 'live'", [timeMs])
      const a = await exec("DELETE FROM approvals WHERE created_ms < $1 AND state != 'pending'", [
        timeMs,
      ])
      return (r.rowCount ?? 0) + (s.rowCount ?? 0) + (a.rowCount ?? 0)
    },
    async saveSession(session) {
      await exec(
        sessionUpsertSql((i) => `$${i + 1}`),
        sessionRow(session),
      )
    },
    async getSession(id) {
      const { rows } = await exec<{ record: string }>('SELECT record FROM sessions WHERE id = $1', [
        id,
      ])
      return rows[0] ? (JSON.parse(rows[0].record) as SessionRecord) : undefined
    },
    async querySessions(input) {
      const q = sessionQuerySchema.parse(input)
      const { sql, params } = sessionWhereClause(q, (i) => `$${i + 1}`)
      const { rows } = await exec<{ record: string }>(
        `SELECT record FROM sessions ${sql} ORDER BY start_ms DESC, id DESC LIMIT $${params.length + 1}`,
        [...params, q.limit],
      )
      return rows.map((r) => JSON.parse(r.record) as SessionRecord)
    },
    async broadcastSessionKill(id, by) {
      await exec('SELECT pg_notify($1, $2)', [killChannel, JSON.stringify({ id, by })])
    },
    onSessionKill(handler) {
      return listen(opts, killChannel, (payload) => {
        const { id, by } = JSON.parse(payload) as { id?: unknown; by?: unknown }
        if (typeof id === 'string' && typeof by === 'string') handler(id, by)
      })
    },
    ...approvalRepository({
      all: async <T>(sql: string, params: unknown[]) => (await exec(sql, params)).rows as T[],
      run: async (sql, params) => (await exec(sql, params)).rowCount ?? 0,
      placeholder: (i) => `$${i + 1}`,
    }),
    async broadcastApprovalChange(id) {
      await exec('SELECT pg_notify($1, $2)', [approvalChannel, id])
    },
    onApprovalChange(handler) {
      return listen(opts, approvalChannel, handler)
    },
    async close() {
      await pool.end()
    },
  }
}
