// The SQLite store's writer thread. better-sqlite3 is synchronous: a batch insert (or a
// retention delete, or a WAL checkpoint it triggers) run on the main thread would stall every
// request queued behind it. Here they run on a worker thread with its own connection; the
// main thread keeps a connection for reads (WAL: readers never block the writer).
import Database from 'better-sqlite3'
import { parentPort, workerData } from 'node:worker_threads'
import { RECORD_COLUMNS } from './migrations.ts'
import { sessionUpsertSql } from '../sessions/record.ts'

export type WriterRequest =
  | { id: number; op: 'insert'; rows: unknown[][] }
  | { id: number; op: 'deleteBefore'; timeMs: number }
  | { id: number; op: 'saveSession'; row: unknown[] }

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
  const stmt = db.prepare(
    `INSERT OR IGNORE INTO audit_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`,
  )
  const insert = db.transaction((rows: unknown[][]) => {
    let changes = 0
    for (const row of rows) changes += stmt.run(...row).changes
    return changes
  })
  const remove = db.prepare('DELETE FROM audit_records WHERE time_ms < ?')
  const removeSessions = db.prepare('DELETE FROM sessions WHERE start_ms < ? AND state != ?')
  // pending approvals stay, however old: someone may still decide (they expire on their own)
  const removeApprovals = db.prepare('DELETE FROM approvals WHERE created_ms < ? AND state != ?')
  const saveSession = db.prepare(sessionUpsertSql(() => '?'))
  port.on('message', (m: WriterRequest) => {
    let reply: WriterReply
    try {
      const changes =
        m.op === 'insert'
          ? insert(m.rows)
          : m.op === 'saveSession'
            ? saveSession.run(...m.row).changes
            : remove.run(m.timeMs).changes +
              removeSessions.run(m.timeMs, 'live').changes +
              removeApprovals.run(m.timeMs, 'pending').changes
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
