// The embedded audit store: one SQLite file in WAL mode (readers, such as `gatehouse audit list`,
// never block the writer), batches in one transaction each.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { MIGRATIONS, MIGRATIONS_TABLE, RECORD_COLUMNS, recordRow } from './migrations.ts'
import { auditQuerySchema, whereClause } from './query.ts'
import type { AuditRecord } from './record.ts'
import type { AuditStore } from './store.ts'

export function openSqliteStore(path: string, opts: { readonly?: boolean } = {}): AuditStore {
  if (!opts.readonly) mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const db = new Database(path, {
    readonly: opts.readonly ?? false,
    fileMustExist: opts.readonly ?? false,
  })
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode: a committed batch survives a process crash (not a power loss).
    db.pragma('synchronous = NORMAL')
  }
  db.pragma('busy_timeout = 5000')
  let insertBatch: ((records: readonly AuditRecord[]) => void) | undefined
  const prepareInsert = (): ((records: readonly AuditRecord[]) => void) => {
    const stmt = db.prepare(
      `INSERT OR IGNORE INTO audit_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`,
    )
    return db.transaction((records: readonly AuditRecord[]) => {
      for (const r of records) stmt.run(...recordRow(r))
    })
  }
  const parse = (row: { record: string } | undefined): AuditRecord | undefined =>
    row ? (JSON.parse(row.record) as AuditRecord) : undefined

  return {
    kind: 'sqlite',
    location: path,
    migrate() {
      db.exec(MIGRATIONS_TABLE)
      const applied = new Set(
        (
          db.prepare('SELECT version FROM gatehouse_schema_migrations').all() as {
            version: number
          }[]
        ).map((r) => r.version),
      )
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue
        db.transaction(() => {
          for (const s of m.statements) db.exec(s)
          db.prepare(
            'INSERT INTO gatehouse_schema_migrations (version, description, applied_at) VALUES (?, ?, ?)',
          ).run(m.version, m.description, new Date().toISOString())
        })()
      }
      return Promise.resolve()
    },
    insert(records) {
      insertBatch ??= prepareInsert()
      insertBatch(records)
      return Promise.resolve()
    },
    query(input) {
      const q = auditQuerySchema.parse(input)
      const { sql, params } = whereClause(q, () => '?')
      const rows = db
        .prepare(`SELECT record FROM audit_records ${sql} ORDER BY time_ms DESC, id DESC LIMIT ?`)
        .all(...params, q.limit) as { record: string }[]
      return Promise.resolve(rows.map((r) => parse(r)!))
    },
    get(id) {
      return Promise.resolve(
        parse(
          db.prepare('SELECT record FROM audit_records WHERE id = ?').get(id) as
            { record: string } | undefined,
        ),
      )
    },
    count(input = {}) {
      const { sql, params } = whereClause(auditQuerySchema.parse(input), () => '?')
      const row = db.prepare(`SELECT COUNT(*) AS n FROM audit_records ${sql}`).get(...params) as {
        n: number
      }
      return Promise.resolve(row.n)
    },
    deleteBefore(timeMs) {
      return Promise.resolve(
        db.prepare('DELETE FROM audit_records WHERE time_ms < ?').run(timeMs).changes,
      )
    },
    close() {
      db.close()
      return Promise.resolve()
    },
  }
}
