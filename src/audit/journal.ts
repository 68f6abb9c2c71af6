// The durable request journal: the record of every request the cluster is about to see is
// appended to a local file, and on disk (fdatasync), before the request is forwarded. Appends
// from concurrent requests share one write and one fdatasync (group commit): while a sync is
// under way the next appends gather, so the cost per request falls as load grows. A line stays
// "pending" until the request's final record is in the store (or the shutdown spool); segments
// rotate by size, carrying the pending lines forward, so the journal holds little more than
// the requests in flight. At start, whatever an earlier run left pending is recovered: those
// requests were forwarded and their final records never reached the store (kill -9, a crash,
// a power loss), so they are written with `recovered` set and their outcome unknown, as
// sessions left live are marked incomplete.
import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../observability/logger.ts'
import type { AuditRecord } from './record.ts'

export interface AuditJournalOptions {
  dir: string
  /** fdatasync before a request is forwarded (power-loss safe); false: a process crash only. */
  fsync: boolean
  /** A segment past this size is rotated (pending lines carried into the next one). */
  maxSegmentBytes: number
  logger?: Logger
}

/** After a failed append, this long before appends are tried again (and requests admitted). */
const FAILURE_COOLDOWN_MS = 1000
/**
 * With fsync on, the segment is opened O_DSYNC where the platform has it: each group's write
 * returns once its data is on disk, one system call (and one trip to libuv's thread pool)
 * instead of a write and an fdatasync.
 */
const DSYNC: number | undefined = constants.O_DSYNC
const SEGMENT = /^journal-\d+-\d+\.jsonl$/

interface Waiter {
  line: Buffer
  resolve(): void
  reject(e: Error): void
}

export class AuditJournal {
  readonly #opts: AuditJournalOptions
  readonly #pending = new Map<string, Buffer>()
  #waiting: Waiter[] = []
  #writing: Promise<void> | undefined
  #handle: FileHandle | undefined
  #segment = ''
  #segmentBytes = 0
  #failedAt = 0
  #closed = false
  readonly #recovered: AuditRecord[]
  #sequence = 0

  private constructor(opts: AuditJournalOptions, recovered: AuditRecord[]) {
    this.#opts = opts
    this.#recovered = recovered
  }

  /**
   * Opens the journal in `dir`: reads what earlier runs left pending (recovered()), writes it
   * into a fresh segment, removes the old segments. Synchronous: it runs once at start, before
   * any request is admitted.
   */
  static open(opts: AuditJournalOptions): AuditJournal {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 })
    const old = readdirSync(opts.dir)
      .filter((f) => SEGMENT.test(f))
      .sort()
    const recovered = new Map<string, AuditRecord>()
    for (const f of old) {
      for (const r of readSegment(join(opts.dir, f), opts.logger)) {
        recovered.set(r.id, {
          ...r,
          response: { ...r.response, code: 0 },
          recovered: r.recovered ?? {
            reason:
              'Gatehouse stopped after forwarding this request and before it ended: its outcome is unknown',
            journal: f,
          },
        })
      }
    }
    const journal = new AuditJournal(opts, [...recovered.values()])
    journal.#startSegmentSync([...recovered.values()].map((r) => journal.#line(r)))
    for (const r of recovered.values()) journal.#pending.set(r.id, journal.#line(r))
    for (const f of old) unlinkSync(join(opts.dir, f))
    if (recovered.size)
      opts.logger?.warn(
        { records: recovered.size, dir: opts.dir },
        'requests forwarded by the last run without a final record: recovered from the journal (outcome unknown)',
      )
    return journal
  }

  /** Records of requests an earlier run forwarded and never finished recording. */
  recovered(): readonly AuditRecord[] {
    return this.#recovered
  }

  /** False for a moment after an append failed (the disk is full or failing). */
  get healthy(): boolean {
    return !this.#closed && Date.now() - this.#failedAt >= FAILURE_COOLDOWN_MS
  }

  get pending(): number {
    return this.#pending.size
  }

  /** Resolves once `record` is on disk (synced when fsync is on); rejects if it cannot be. */
  append(record: AuditRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the audit journal is closed'))
    const line = this.#line(record)
    this.#pending.set(record.id, line)
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({
        line,
        resolve,
        reject: (e) => {
          this.#pending.delete(record.id)
          reject(e)
        },
      })
      // #writing is cleared by the loop itself, synchronously with its last check of #waiting:
      // an append made between that check and a .finally() would otherwise never be written.
      this.#writing ??= this.#writeLoop()
    })
  }

  /** These requests' final records are in the store (or spooled): their lines may go. */
  settle(ids: readonly string[]): void {
    for (const id of ids) this.#pending.delete(id)
  }

  /** Waits for appends under way; removes the segment when nothing is pending. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#writing
    await this.#handle?.close().catch(() => undefined)
    this.#handle = undefined
    if (this.#pending.size === 0) {
      try {
        unlinkSync(join(this.#opts.dir, this.#segment))
      } catch {
        // already gone
      }
    }
  }

  #line(record: AuditRecord): Buffer {
    return Buffer.from(JSON.stringify(record) + '\n')
  }

  async #writeLoop(): Promise<void> {
    while (this.#waiting.length) {
      const group = this.#waiting
      this.#waiting = []
      try {
        const data = Buffer.concat(group.map((w) => w.line))
        await this.#writeAll(data)
        if (this.#opts.fsync && DSYNC === undefined) await this.#handle!.datasync()
        this.#segmentBytes += data.length
        if (this.#segmentBytes > this.#opts.maxSegmentBytes) await this.#rotate()
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e))
        if (this.healthy)
          this.#opts.logger?.error(
            { dir: this.#opts.dir, error: error.message },
            'audit journal write failed: requests are refused until it writes again',
          )
        this.#failedAt = Date.now()
        for (const w of group) w.reject(error)
        continue
      }
      for (const w of group) w.resolve()
    }
    this.#writing = undefined
  }

  async #writeAll(data: Buffer): Promise<void> {
    this.#handle ??= await open(
      join(this.#opts.dir, this.#segment),
      constants.O_WRONLY |
        constants.O_APPEND |
        constants.O_CREAT |
        (this.#opts.fsync && DSYNC !== undefined ? DSYNC : 0),
      0o600,
    )
    let off = 0
    while (off < data.length) {
      const { bytesWritten } = await this.#handle.write(data, off)
      off += bytesWritten
    }
  }

  /** A new segment holding every pending line; the old one is removed once that is on disk. */
  async #rotate(): Promise<void> {
    const previous = this.#segment
    await this.#handle?.close()
    this.#handle = undefined
    this.#startSegmentSync([...this.#pending.values()])
    unlinkSync(join(this.#opts.dir, previous))
  }

  #startSegmentSync(lines: readonly Buffer[]): void {
    this.#segment = `journal-${Date.now()}-${String(++this.#sequence).padStart(6, '0')}.jsonl`
    const path = join(this.#opts.dir, this.#segment)
    const fd = openSync(path, 'a', 0o600)
    try {
      const data = Buffer.concat(lines)
      let off = 0
      while (off < data.length) off += writeSync(fd, data, off)
      this.#segmentBytes = data.length
      if (this.#opts.fsync) fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    // The new file's directory entry must be durable too, or a power loss could lose the file.
    if (this.#opts.fsync) syncDir(this.#opts.dir)
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** The records in a segment; a torn last line (a crash mid-append: never acknowledged) is skipped. */
function readSegment(path: string, logger: Logger | undefined): AuditRecord[] {
  const out: AuditRecord[] = []
  let skipped = 0
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue
    try {
      const r = JSON.parse(line) as AuditRecord
      if (typeof r?.id === 'string' && r.response) out.push(r)
      else skipped++
    } catch {
      skipped++
    }
  }
  if (skipped) logger?.warn({ path, skipped }, 'audit journal: unreadable lines skipped')
  return out
}
