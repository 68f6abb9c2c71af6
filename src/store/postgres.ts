// The shared database: PostgreSQL, for production and for several Gatehouse replicas. Each
// deployment keeps its tables in its own schema; a batch insert is one statement over a JSON
// array (one round trip whatever its size); migrations take an advisory lock so replicas
// starting together apply each version once; change notifications are LISTEN/NOTIFY on
// channels named per schema, so replicas of one deployment hear each other and no other.
import pg from 'pg'
import type { Database } from './database.ts'
import { checkedMigrations, MIGRATIONS_TABLE, recordMigrationSql } from './migrations.ts'
import { storableParams, storableText } from './storable.ts'

/** Arbitrary, fixed: the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK = 0x6761_7465

export interface PostgresOptions {
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
  opts: PostgresOptions,
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

/** A batch as one JSON array of objects (`json_to_recordset` turns it back into rows). */
function recordset(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  // Storable here, value by value: inside one JSON parameter the binding cannot see them.
  return JSON.stringify(
    rows.map((r) =>
      Object.fromEntries(
        columns.map((c, i) => {
          const v = r[i]
          return [c, typeof v === 'string' ? storableText(v) : v]
        }),
      ),
    ),
  )
}

export function openPostgres(opts: PostgresOptions): Database {
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
  const changed = async (sql: string, params?: readonly unknown[]): Promise<number> =>
    (await exec(sql, params)).rowCount ?? 0
  /** Per schema: replicas of one deployment hear each other, other deployments do not. */
  const channelOf = (name: string): string => `gatehouse_${name}_${opts.schema}`
  const listeners = new Set<() => Promise<void>>()

  return {
    dialect: 'postgres',
    location: describe(opts.connectionString, opts.schema),
    shared: true,
    placeholder: (i) => `$${i + 1}`,
    async all<T>(sql: string, params?: readonly unknown[]) {
      return (await exec(sql, params)).rows as T[]
    },
    run: changed,
    write: changed,
    async insertBatch(table, rows) {
      if (rows.length === 0) return 0
      const columns = table.columns.map(([c]) => c)
      const types = table.columns.map(([c, t]) => `${c} ${t.toLowerCase()}`).join(', ')
      return changed(
        `INSERT INTO ${table.name} (${columns.join(', ')})
         SELECT * FROM json_to_recordset($1::json) AS x(${types})
         ON CONFLICT (${table.key}) DO NOTHING`,
        [recordset(columns, rows)],
      )
    },
    async migrate(migrations) {
      const list = checkedMigrations(migrations)
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
        for (const m of list) {
          if (applied.has(m.version)) continue
          for (const s of m.statements) await client.query(s)
          await client.query(
            recordMigrationSql((i) => `$${i + 1}`),
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
    async notify(channel, payload) {
      await exec('SELECT pg_notify($1, $2)', [channelOf(channel), payload])
    },
    async listen(channel, handler) {
      const stop = await listen(opts, channelOf(channel), handler)
      const unsubscribe = async (): Promise<void> => {
        listeners.delete(unsubscribe)
        await stop()
      }
      listeners.add(unsubscribe)
      return unsubscribe
    },
    async close() {
      await Promise.all([...listeners].map((stop) => stop()))
      await pool.end()
    },
  }
}
