// Gets records into the store without ever blocking a request: records queue in memory and are
// written in batches by a background loop. When the store fails, batches are retried with
// backoff and nothing is dropped; once the queue reaches its bound, `admits()` turns false and the
// gateway refuses new requests with 503 (fail closed, NIST SP 800-53 AU-5) until the store takes
// writes again. The other policy, `dropRecords`, keeps serving and counts what it drops.
// On shutdown the queue is flushed; what the store will not take is spooled to a file in the
// data directory and written on the next start.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from '../observability/logger.ts'
import type { AuditRecord } from './record.ts'
import type { AuditStore } from './store.ts'

export type StoreFailurePolicy = 'refuseRequests' | 'dropRecords'

export interface AuditWriterOptions {
  /** Records held while the store is slow or down. */
  maxBufferedRecords: number
  batchSize: number
  flushIntervalMs: number
  onStoreFailure: StoreFailurePolicy
  /** Where unflushed records go on shutdown (and are read back from at start). */
  spoolDir?: string
  logger?: Logger
}

export interface AuditWriterStats {
  buffered: number
  written: number
  dropped: number
  /** Requests refused because the buffer was full. */
  refused: number
  storeHealthy: boolean
  lastError?: string
}

export class AuditWriter {
  readonly #store: AuditStore
  readonly #opts: AuditWriterOptions
  #queue: AuditRecord[] = []
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #closed = false
  #failures = 0
  /** The current run of refusals (buffer full), summarised in one record when it ends. */
  #refusing: { requests: number; from: number; until: number } | undefined
  readonly #stats: AuditWriterStats = {
    buffered: 0,
    written: 0,
    dropped: 0,
    refused: 0,
    storeHealthy: true,
  }

  constructor(store: AuditStore, opts: AuditWriterOptions) {
    this.#store = store
    this.#opts = opts
  }

  get store(): AuditStore {
    return this.#store
  }

  /** False while the buffer is full under the refuseRequests policy: refuse new requests. */
  admits(): boolean {
    if (this.#opts.onStoreFailure === 'dropRecords') return true
    const ok = this.#queue.length < this.#opts.maxBufferedRecords
    if (ok) {
      if (this.#refusing) this.#endRefusals()
      return true
    }
    this.#stats.refused++
    const now = Date.now()
    if (this.#refusing) {
      this.#refusing.requests++
      this.#refusing.until = now
    } else {
      this.#refusing = { requests: 1, from: now, until: now }
      this.#opts.logger?.error(
        { buffered: this.#queue.length, store: this.#store.location },
        'audit buffer full: refusing requests until the audit store takes writes (onStoreFailure: refuseRequests)',
      )
    }
    return false
  }

  /** Records the run of refusals that just ended as one summary record. */
  #endRefusals(): void {
    const run = this.#refusing!
    this.#refusing = undefined
    const from = new Date(run.from).toISOString()
    const until = new Date(run.until).toISOString()
    const message = `${run.requests} request(s) refused from ${from} until ${until}: the audit store was unavailable and the audit buffer full (onStoreFailure: refuseRequests)`
    this.#opts.logger?.warn({ refused: run.requests, from, until }, 'accepting requests again')
    this.#queue.push({
      id: `gatehouse-refusals-${randomUUID()}`,
      time: from,
      durationMs: run.until - run.from,
      cluster: null,
      identity: null,
      source: { address: '' },
      request: null,
      decision: { action: 'deny', rule: 'builtin:audit-unavailable', auditLevel: 'metadata' },
      principal: null,
      response: { code: 503, requestBytes: 0, responseBytes: 0 },
      error: { code: 'GW_AUDIT_UNAVAILABLE', message },
      refusedWhileUnavailable: { requests: run.requests, from, until },
    })
    this.#schedule()
  }

  /** Never blocks, never throws. */
  write(record: AuditRecord): void {
    if (
      this.#queue.length >= this.#opts.maxBufferedRecords &&
      this.#opts.onStoreFailure === 'dropRecords'
    ) {
      this.#stats.dropped++
      if (this.#stats.dropped === 1 || this.#stats.dropped % 1000 === 0)
        this.#opts.logger?.error(
          { dropped: this.#stats.dropped },
          'audit buffer full: records are being DROPPED (onStoreFailure: dropRecords)',
        )
      return
    }
    // Requests admitted before the buffer filled still finish and are recorded: the bound is on
    // admission, so no response ever goes out without its record being kept.
    this.#queue.push(record)
    this.#schedule()
  }

  stats(): AuditWriterStats {
    return { ...this.#stats, buffered: this.#queue.length }
  }

  #schedule(): void {
    if (this.#flushing || this.#timer || this.#closed) return
    const delay = this.#queue.length >= this.#opts.batchSize ? 0 : this.#opts.flushIntervalMs
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#flushing = this.#drain().finally(() => {
        this.#flushing = undefined
        if (this.#queue.length) this.#schedule()
      })
    }, delay)
  }

  /** Writes batches until the queue is empty or the store fails (then backs off and retries). */
  async #drain(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.slice(0, this.#opts.batchSize)
      try {
        await this.#store.insert(batch)
      } catch (e) {
        this.#failures++
        const message = (e as Error).message ?? String(e)
        if (this.#stats.storeHealthy)
          this.#opts.logger?.error(
            { store: this.#store.location, error: message, buffered: this.#queue.length },
            'audit store write failed: records are buffered and retried',
          )
        this.#stats.storeHealthy = false
        this.#stats.lastError = message
        if (this.#closed) return
        await new Promise((r) =>
          setTimeout(r, Math.min(100 * 2 ** Math.min(this.#failures, 6), 5000)),
        )
        continue
      }
      // The queue may have grown meanwhile; the batch is still its head.
      this.#queue.splice(0, batch.length)
      this.#stats.written += batch.length
      if (!this.#stats.storeHealthy) {
        this.#opts.logger?.warn({ store: this.#store.location }, 'audit store is writable again')
        this.#stats.storeHealthy = true
        delete this.#stats.lastError
      }
      this.#failures = 0
    }
  }

  /** Resolves when everything queued before the call is in the store (for tests and shutdown). */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (this.#queue.length && Date.now() < deadline) {
      if (this.#timer) {
        clearTimeout(this.#timer)
        this.#timer = undefined
      }
      this.#flushing ??= this.#drain().finally(() => (this.#flushing = undefined))
      await Promise.race([this.#flushing, new Promise((r) => setTimeout(r, 50))])
    }
    return this.#queue.length === 0
  }

  /** Flushes within `timeoutMs`; spools the rest to disk; closes the store. */
  async close(timeoutMs: number): Promise<void> {
    if (this.#refusing) this.#endRefusals()
    await this.flush(timeoutMs)
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#queue.length && this.#opts.spoolDir) {
      mkdirSync(this.#opts.spoolDir, { recursive: true, mode: 0o700 })
      const file = join(this.#opts.spoolDir, `audit-spool-${Date.now()}-${process.pid}.jsonl`)
      writeFileSync(`${file}.tmp`, this.#queue.map((r) => JSON.stringify(r)).join('\n') + '\n', {
        mode: 0o600,
      })
      renameSync(`${file}.tmp`, file)
      this.#opts.logger?.warn(
        { records: this.#queue.length, file },
        'audit store unavailable at shutdown: records spooled to disk, written at next start',
      )
      this.#queue = []
    }
    await this.#store.close().catch(() => undefined)
  }

  /** Queues records spooled by an earlier shutdown; the files are removed once queued. */
  recoverSpool(): number {
    const dir = this.#opts.spoolDir
    if (!dir) return 0
    let n = 0
    let entries: string[] = []
    try {
      entries = readdirSync(dir).filter((f) => /^audit-spool-.*\.jsonl$/.test(f))
    } catch {
      return 0
    }
    for (const f of entries.sort()) {
      const path = join(dir, f)
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (!line.trim()) continue
        this.#queue.push(JSON.parse(line) as AuditRecord)
        n++
      }
      unlinkSync(path)
    }
    if (n) {
      this.#opts.logger?.info({ records: n }, 'audit records recovered from the spool')
      this.#schedule()
    }
    return n
  }
}
