// The embedded database: one SQLite file in WAL mode (readers, such as `gatehouse audit list`,
// never block the writer). Reads and compare-and-set writes run on the main connection; writes
// that may wait (batches, session saves, retention) run on a worker thread (sqlite-writer.ts) so
// the request path never waits for the disk. Change notifications stay in this process.
import BetterSqlite3 from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Database } from './database.ts'
import { checkedMigrations, MIGRATIONS_TABLE, recordMigrationSql } from './migrations.ts'
import { inProcessNotifications } from './notifications.ts'
import { storableParams } from './storable.ts'
import type { WriterReply, WriterRequest } from './sqlite-writer.ts'

type WriterOp =
  { op: 'run'; sql: string; params: unknown[] } | { op: 'batch'; sql: string; rows: unknown[][] }

/** The writer thread, started on first write (after migrations ran on the main connection). */
function startWriter(path: string): {
  send(op: WriterOp): Promise<number>
  close(): Promise<void>
} {
  const worker = new Worker(new URL('./sqlite-writer.js', import.meta.url), {
    workerData: { path },
  })
  const pending = new Map<number, { resolve(n: number): void; reject(e: Error): void }>()
  let next = 0
  let failure: Error | undefined
  const failAll = (e: Error): void => {
    failure = e
    for (const p of pending.values()) p.reject(e)
    pending.clear()
  }
  worker.on('message', (m: WriterReply) => {
    const p = pending.get(m.id)
    pending.delete(m.id)
    if (pending.size === 0) worker.unref()
    if (m.ok) p?.resolve(m.changes)
    else p?.reject(Object.assign(new Error(m.error), m.code ? { code: m.code } : {}))
  })
  worker.on('error', (e) => failAll(new Error(`database writer thread failed: ${e.message}`)))
  worker.on('exit', (code) => failAll(new Error(`database writer thread exited (${code})`)))
  // Keeps the process alive only while a write is in flight: an idle database never holds it open.
  worker.unref()
  return {
    send(op) {
      if (failure) return Promise.reject(failure)
      const id = ++next
      if (pending.size === 0) worker.ref()
      return new Promise<number>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        worker.postMessage({ id, ...op } satisfies WriterRequest)
      })
    },
    async close() {
      await worker.terminate()
    },
  }
}

/** `f()` as a promise: a synchronous throw (a bad statement, a busy file) becomes a rejection. */
function settle<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f())
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)))
  }
}

export function openSqlite(path: string, opts: { readonly?: boolean } = {}): Database {
  const readonly = opts.readonly ?? false
  if (!readonly) mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const db = new BetterSqlite3(path, { readonly, fileMustExist: readonly })
  if (!readonly) {
    db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode: a committed batch survives a process crash (not a power loss).
    db.pragma('synchronous = NORMAL')
  }
  db.pragma('busy_timeout = 5000')
  const notifications = inProcessNotifications()
  let writer: ReturnType<typeof startWriter> | undefined
  const refuseReadonly = (): Promise<never> =>
    Promise.reject(new Error(`${path} is open read-only`))
  const write = (op: WriterOp): Promise<number> =>
    readonly ? refuseReadonly() : (writer ??= startWriter(path)).send(op)

  return {
    dialect: 'sqlite',
    location: path,
    shared: false,
    placeholder: () => '?',
    all<T>(sql: string, params: readonly unknown[] = []) {
      return settle(() => db.prepare(sql).all(...storableParams(params)) as T[])
    },
    run(sql, params = []) {
      if (readonly) return refuseReadonly()
      return settle(() => db.prepare(sql).run(...storableParams(params)).changes)
    },
    write(sql, params = []) {
      return write({ op: 'run', sql, params: storableParams(params) })
    },
    insertBatch(table, rows) {
      if (rows.length === 0) return Promise.resolve(0)
      const columns = table.columns.map(([c]) => c)
      // OR IGNORE: a row whose key is stored is skipped (so is one breaking a NOT NULL or CHECK
      // constraint; the repositories' rows break none).
      const sql = `INSERT OR IGNORE INTO ${table.name} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`
      return write({ op: 'batch', sql, rows: rows.map((r) => storableParams(r)) })
    },
    migrate(migrations) {
      return settle(() => {
        const list = checkedMigrations(migrations)
        db.exec(MIGRATIONS_TABLE)
        const isApplied = db.prepare('SELECT 1 FROM gatehouse_schema_migrations WHERE version = ?')
        // Each version in its own IMMEDIATE transaction that checks again whether it is applied:
        // another process migrating the same file at once waits for the lock, then skips it.
        for (const m of list)
          db.transaction(() => {
            if (isApplied.get(m.version)) return
            for (const s of m.statements) db.exec(s)
            db.prepare(recordMigrationSql(() => '?')).run(
              m.version,
              m.description,
              new Date().toISOString(),
            )
          }).immediate()
      })
    },
    notify: (channel, payload) => notifications.notify(channel, payload),
    listen: (channel, handler) => notifications.listen(channel, handler),
    async close() {
      notifications.close()
      await writer?.close()
      db.close()
    },
  }
}
