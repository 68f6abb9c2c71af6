// The embedded audit store: one SQLite file in WAL mode (readers, such as `gatehouse audit list`,
// never block the writer), batches in one transaction each, written on a worker thread
// (sqlite-writer.ts) so the request path never waits for the disk.
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { Worker } from 'node:worker_threads'
import { MIGRATIONS, MIGRATIONS_TABLE, recordRow } from './migrations.ts'
import { auditQuerySchema, whereClause } from './query.ts'
import { storableParams, storableText } from './storable.ts'
import type { AuditRecord } from './record.ts'
import type { AuditStore } from './store.ts'
import {
  sessionQuerySchema,
  sessionRow,
  sessionWhereClause,
  type SessionRecord,
} from '../sessions/record.ts'
import type { WriterReply, WriterRequest } from './sqlite-writer.ts'
import { approvalRepository } from '../approval/repository.ts'

type WriterOp =
  | { op: 'insert'; rows: unknown[][] }
  | { op: 'deleteBefore'; timeMs: number }
  | { op: 'saveSession'; row: unknown[] }

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
  worker.on('error', (e) => failAll(new Error(`audit writer thread failed: ${e.message}`)))
  worker.on('exit', (code) => failAll(new Error(`audit writer thread exited (${code})`)))
  // Keeps the process alive only while a write is in flight: an idle store never holds it open.
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
  let writer: ReturnType<typeof startWriter> | undefined
  const write = (op: WriterOp): Promise<number> => (writer ??= startWriter(path)).send(op)
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
    async insert(records) {
      if (opts.readonly) throw new Error(`${path} is open read-only`)
      await write({ op: 'insert', rows: records.map((r) => storableParams(recordRow(r))) })
    },
    query(input) {
      const q = auditQuerySchema.parse(input)
      const { sql, params } = whereClause(q, () => '?')
      const rows = db
        .prepare(`SELECT record FROM audit_records ${sql} ORDER BY time_ms DESC, id DESC LIMIT ?`)
        .all(...storableParams(params), q.limit) as { record: string }[]
      return Promise.resolve(rows.map((r) => parse(r)!))
    },
    get(id) {
      return Promise.resolve(
        parse(
          db.prepare('SELECT record FROM audit_records WHERE id = ?').get(storableText(id)) as
            { record: string } | undefined,
        ),
      )
    },
    count(input = {}) {
      const { sql, params } = whereClause(auditQuerySchema.parse(input), () => '?')
      const row = db
        .prepare(`SELECT COUNT(*) AS n FROM audit_records ${sql}`)
        .get(...storableParams(params)) as {
        n: number
      }
      return Promise.resolve(row.n)
    },
    deleteBefore(timeMs) {
      return write({ op: 'deleteBefore', timeMs })
    },
    async saveSession(session) {
      if (opts.readonly) throw new Error(`${path} is open read-only`)
      await write({ op: 'saveSession', row: storableParams(sessionRow(session)) })
    },
    getSession(id) {
      const row = db.prepare('SELECT record FROM sessions WHERE id = ?').get(storableText(id)) as
        { record: string } | undefined
      return Promise.resolve(row ? (JSON.parse(row.record) as SessionRecord) : undefined)
    },
    querySessions(input) {
      const q = sessionQuerySchema.parse(input)
      const { sql, params } = sessionWhereClause(q, () => '?')
      const rows = db
        .prepare(`SELECT record FROM sessions ${sql} ORDER BY start_ms DESC, id DESC LIMIT ?`)
        .all(...storableParams(params), q.limit) as { record: string }[]
      return Promise.resolve(rows.map((r) => JSON.parse(r.record) as SessionRecord))
    },
    // Approvals are written on this connection, synchronously: they are rare, and their
    // compare-and-set must see its own result at once (the writer thread batches).
    ...approvalRepository({
      all: <T>(sql: string, params: unknown[]) =>
        Promise.resolve(db.prepare(sql).all(...storableParams(params)) as T[]),
      run(sql, params) {
        if (opts.readonly) return Promise.reject(new Error(`${path} is open read-only`))
        return Promise.resolve(db.prepare(sql).run(...storableParams(params)).changes)
      },
      placeholder: () => '?',
    }),
    async close() {
      await writer?.close()
      db.close()
    },
  }
}
