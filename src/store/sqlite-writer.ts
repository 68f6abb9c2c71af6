// The SQLite database's writer thread. better-sqlite3 is synchronous: a batch insert (or a
// retention delete, or a WAL checkpoint it triggers) run on the main thread would stall every
// request queued behind it. Here they run on a worker thread with its own connection; the
// main thread keeps a connection for reads (WAL: readers never block the writer). Parameters
// arrive already storable (sqlite.ts).
import Database from 'better-sqlite3'
import { parentPort, workerData } from 'node:worker_threads'

export type WriterRequest =
  /** One statement. */
  | { id: number; op: 'run'; sql: string; params: unknown[] }
  /** One statement per row, all in one transaction. */
  | { id: number; op: 'batch'; sql: string; rows: unknown[][] }

export type WriterReply =
  | { id: number; ok: true; changes: number }
  | { id: number; ok: false; error: string; code?: string }

const port = parentPort
if (port) {
  const db = new Database((workerData as { path: string }).path)
  db.pragma('journal_mode = WAL')
  // NORMAL in WAL mode: a committed batch survives a process crash (not a power loss).
  db.pragma('synchronous = NORMAL')
  db.pragma('busy_timeout = 5000')
  // Repositories send a handful of fixed statements: each is prepared once.
  const statements = new Map<string, Database.Statement>()
  const prepared = (sql: string): Database.Statement => {
    let s = statements.get(sql)
    if (!s) {
      if (statements.size >= 256) statements.clear()
      statements.set(sql, (s = db.prepare(sql)))
    }
    return s
  }
  const batch = db.transaction((sql: string, rows: unknown[][]) => {
    const stmt = prepared(sql)
    let changes = 0
    for (const row of rows) changes += stmt.run(...row).changes
    return changes
  })
  port.on('message', (m: WriterRequest) => {
    let reply: WriterReply
    try {
      const changes =
        m.op === 'batch' ? batch(m.sql, m.rows) : prepared(m.sql).run(...m.params).changes
      reply = { id: m.id, ok: true, changes }
    } catch (e) {
      const code = (e as { code?: unknown }).code
      reply = {
        id: m.id,
        ok: false,
        error: e instanceof Error ? e.message : String(e),
        ...(typeof code === 'string' ? { code } : {}),
      }
    }
    port.postMessage(reply)
  })
}
