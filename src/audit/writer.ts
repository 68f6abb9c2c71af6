// Gets records into the store without ever blocking a request: a forwarded request's record is
// first made durable in the journal (journal.ts, before forwarding), its final record queues in
// memory and is written in batches by a background loop. When the store fails, batches are retried with
// backoff and nothing is dropped; once the queue reaches its bound, `admits()` turns false and the
// gateway refuses new requests with 503 (fail closed, NIST SP 800-53 AU-5) until the store takes
// writes again. The other policy, `dropRecords`, keeps serving and counts what it drops.
// A batch the store refuses for one record's content is written record by record, and the
// poisoned record stored escaped and flagged (quarantine.ts): content never blocks the queue.
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
import type { AuditJournal } from './journal.ts'
import { quarantined } from './quarantine.ts'
import type { AuditRecord } from './record.ts'
import { isContentError } from '../store/index.ts'
import type { AuditRepository } from './repository.ts'

export type StoreFailurePolicy = 'refuseRequests' | 'dropRecords'

export interface AuditWriterOptions {
  /** Records held while the store is slow or down. */
  maxBufferedRecords: number
  batchSize: number
  flushIntervalMs: number
  onStoreFailure: StoreFailurePolicy
  /** Where unflushed records go on shutdown (and are read back from at start). */
  spoolDir?: string
  /** Where forwarded requests' records are made durable first; absent: memory only. */
  journal?: AuditJournal
  logger?: Logger
}

export interface AuditWriterStats {
  buffered: number
  written: number
  dropped: number
  /** Requests refused because the buffer was full. */
  refused: number
  /** Records the store refused for their content, stored escaped and flagged instead. */
  quarantined: number
  /** Journal lines whose final record is not in the store yet. */
  journalPending: number
  storeHealthy: boolean
  lastError?: string
}

export class AuditWriter {
  readonly #store: AuditRepository
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
    quarantined: 0,
    journalPending: 0,
    storeHealthy: true,
  }

  constructor(store: AuditRepository, opts: AuditWriterOptions) {
    this.#store = store
    this.#opts = opts
  }

  get store(): AuditRepository {
    return this.#store
  }

  /**
   * The one rule for "may Gatehouse take requests" (readyz and the admit stage both ask it):
   * the journal can write, and under refuseRequests the buffer is below its bound.
   */
  accepting(): boolean {
    if (this.#opts.journal && !this.#opts.journal.healthy) return false
    if (this.#opts.onStoreFailure === 'dropRecords') return true
    return this.#queue.length < this.#opts.maxBufferedRecords
  }

  /** False for a moment after the journal failed to write (disk full or failing). */
  journalHealthy(): boolean {
    return this.#opts.journal?.healthy ?? true
  }

  /** accepting(), counting the refusals (summarised in one record when accepting again). */
  admits(): boolean {
    const ok = this.accepting()
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
        !this.journalHealthy()
          ? 'audit journal cannot write: refusing requests until it can'
          : 'audit buffer full: refusing requests until the audit store takes writes (onStoreFailure: refuseRequests)',
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

  /**
   * Makes a forwarded request's record durable before it is forwarded: resolves once it is in
   * the journal (on disk), rejects when it cannot be (then the request must be refused). Without
   * a journal it resolves at once (audit.journal.enabled false: memory only).
   */
  begin(record: AuditRecord): Promise<void> {
    return this.#opts.journal ? this.#opts.journal.append(record) : Promise.resolve()
  }

  /** Never blocks, never throws. */
  write(record: AuditRecord): void {
    if (
      this.#queue.length >= this.#opts.maxBufferedRecords &&
      this.#opts.onStoreFailure === 'dropRecords'
    ) {
      this.#stats.dropped++
      // Dropped by choice (dropRecords): its journal line goes too, or pending lines would grow.
      this.#opts.journal?.settle([record.id])
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
    return {
      ...this.#stats,
      buffered: this.#queue.length,
      journalPending: this.#opts.journal?.pending ?? 0,
    }
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
        await this.#insert(batch)
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
      this.#opts.journal?.settle(batch.map((r) => r.id))
      this.#stats.written += batch.length
      if (!this.#stats.storeHealthy) {
        this.#opts.logger?.warn({ store: this.#store.location }, 'audit store is writable again')
        this.#stats.storeHealthy = true
        delete this.#stats.lastError
      }
      this.#failures = 0
    }
  }

  /**
   * Inserts a batch; when the store refuses it for content, record by record, each refused
   * record stored as its quarantined stand-in. Outages (anything else) throw: retried whole.
   */
  async #insert(batch: readonly AuditRecord[]): Promise<void> {
    try {
      await this.#store.insert(batch)
      return
    } catch (e) {
      if (!isContentError(e)) throw e
      if (batch.length > 1) {
        for (const r of batch) await this.#insert([r])
        return
      }
      const reason = (e as Error).message ?? String(e)
      const stand = quarantined(batch[0]!, reason)
      try {
        await this.#store.insert([stand])
        this.#stats.quarantined++
        this.#opts.logger?.error(
          { requestId: stand.id, store: this.#store.location, error: reason },
          'audit store refused a record for its content: stored escaped and flagged (storage.escaped)',
        )
      } catch (e2) {
        if (!isContentError(e2)) throw e2
        // Not even the bounded ASCII stand-in is accepted: never block the queue on it.
        this.#stats.dropped++
        this.#opts.logger?.error(
          { requestId: stand.id, error: (e2 as Error).message },
          'audit store refused a record and its escaped stand-in: record dropped',
        )
      }
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

  /** Flushes within `timeoutMs`; spools the rest to disk (the database is closed by its owner). */
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
      this.#opts.journal?.settle(this.#queue.map((r) => r.id))
      this.#opts.logger?.warn(
        { records: this.#queue.length, file },
        'audit store unavailable at shutdown: records spooled to disk, written at next start',
      )
      this.#queue = []
    }
    await this.#opts.journal?.close()
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
        this.#queue.push(spooledRecord(line, f))
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

  /**
   * Queues the records the journal recovered (requests forwarded by a run that stopped before
   * recording their end), after the spool: a request whose final record was spooled keeps it.
   */
  recoverJournal(): number {
    const journal = this.#opts.journal
    if (!journal) return 0
    const queued = new Set(this.#queue.map((r) => r.id))
    const spooled: string[] = []
    let n = 0
    for (const r of journal.recovered()) {
      if (queued.has(r.id)) spooled.push(r.id)
      else {
        this.#queue.push(r)
        n++
      }
    }
    journal.settle(spooled)
    if (n) this.#schedule()
    return n
  }
}

/**
 * A spooled line as a record. A line that is not a record (a torn or edited file) becomes a
 * quarantined stand-in carrying it, so it is kept as evidence and never blocks the start.
 */
function spooledRecord(line: string, file: string): AuditRecord {
  try {
    const r = JSON.parse(line) as AuditRecord
    if (typeof r?.id === 'string' && typeof r.time === 'string' && r.response) return r
  } catch {
    // below
  }
  const placeholder: AuditRecord = {
    id: `gatehouse-spool-unreadable-${randomUUID()}`,
    time: new Date().toISOString(),
    durationMs: 0,
    cluster: null,
    identity: null,
    source: { address: '' },
    request: null,
    decision: null,
    principal: null,
    response: { code: 0, requestBytes: 0, responseBytes: 0 },
  }
  return quarantined(placeholder, `unreadable line in spool file ${file}`, Buffer.from(line))
}
