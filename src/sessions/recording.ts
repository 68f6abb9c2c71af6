// Session recordings: asciicast v2 (asciinema's format: a JSON header line, then one
// `[seconds, code, data]` line per event), gzip-compressed, written incrementally. Codes:
//   o  stdout          e  stderr (Gatehouse's own code; asciinema players ignore it)
//   i  stdin           r  resize, "COLSxROWS"
//   ob eb ib  the same streams, base64, for bytes that are not UTF-8 (exact replay of binary)
//   x  exit status: "0", the exit code, or the failure message
//   c  port-forward connection event: {"connection","port","event":"open"|"close"|"error",...}
//   pi po  port-forward bytes (base64) to and from the pod, the first N bytes per connection
//   g  Gatehouse: why the session or its recording ended
// The gzip stream is flushed (Z_SYNC_FLUSH) at least every FLUSH_MS, so a crash loses at most
// that much: everything flushed decompresses from a truncated file.
import { constants, createGunzip, createGzip, type Gzip } from 'node:zlib'
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  rmSync,
  type WriteStream,
} from 'node:fs'
import { isUtf8 } from 'node:buffer'
import { dirname, join, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'

const FLUSH_MS = 250
/** Above this many bytes waiting for gzip or the disk, the recorder asks the relay to pause. */
const BACKLOG_HIGH = 8 * 1024 * 1024

/** Where recordings live. The local directory is the default; an object store can implement it. */
export interface RecordingStore {
  readonly location: string
  /** A new recording; `key` is what the session record keeps. */
  create(key: string): RecordingSink
  /** The stored (compressed) bytes of a recording. */
  open(key: string): Readable
  remove(key: string): Promise<void>
  /** Removes recordings of sessions started before `timeMs` (whole days); returns how many. */
  deleteBefore(timeMs: number): Promise<number>
}

export interface RecordingSink {
  write(data: Buffer): void
  /** Bytes accepted but not yet written out (backpressure for the recorder). */
  pending(): number
  /** Makes everything written so far durable (survives a crash of the process). */
  flush(): Promise<void>
  close(): Promise<void>
}

export function localRecordingStore(dir: string): RecordingStore {
  const root = resolve(dir)
  const pathOf = (key: string): string => {
    const p = resolve(root, key)
    if (!p.startsWith(root + sep)) throw new Error(`recording key '${key}' leaves ${root}`)
    return p
  }
  return {
    location: root,
    create(key) {
      const path = pathOf(key)
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
      const file: WriteStream = createWriteStream(path, { flags: 'wx', mode: 0o600 })
      let failure: Error | undefined
      file.on('error', (e) => (failure = e))
      return {
        write(data) {
          if (!failure) file.write(data)
        },
        pending() {
          return failure ? 0 : file.writableLength
        },
        flush() {
          // resolves once every earlier write reached the file (writes complete in order)
          return new Promise((res) => {
            if (failure) return res()
            file.write(Buffer.alloc(0), () => res())
          })
        },
        close() {
          return new Promise((res) => file.end(() => res()))
        },
      }
    },
    open(key) {
      return createReadStream(pathOf(key))
    },
    async remove(key) {
      rmSync(pathOf(key), { force: true })
      await Promise.resolve()
    },
    async deleteBefore(timeMs) {
      // Keys are yyyy/mm/dd/<id>.cast.gz: remove the day folders wholly before the cutoff day.
      const cutoffDay = new Date(timeMs).toISOString().slice(0, 10)
      let removed = 0
      const list = (p: string): string[] => {
        try {
          return readdirSync(p).filter((n) => /^\d+$/.test(n))
        } catch {
          return []
        }
      }
      for (const y of list(root))
        for (const m of list(join(root, y)))
          for (const d of list(join(root, y, m))) {
            if (`${y}-${m}-${d}` >= cutoffDay) continue
            const dir = join(root, y, m, d)
            removed += readdirSync(dir).length
            rmSync(dir, { recursive: true, force: true })
          }
      await Promise.resolve()
      return removed
    },
  }
}

/** The recording store gatehouse.yaml names (today: a local directory, default <dataDir>/recordings). */
export function recordingStoreFromConfig(config: {
  dataDir: string
  sessions: { recordings: { local: { dir?: string | undefined } } }
}): RecordingStore {
  return localRecordingStore(
    config.sessions.recordings.local.dir ?? join(config.dataDir, 'recordings'),
  )
}

/** yyyy/mm/dd/<id>.cast.gz: a folder per day keeps directories small and retention simple. */
export function recordingKey(id: string, startedAt: Date): string {
  const d = startedAt.toISOString().slice(0, 10).replace(/-/g, '/')
  return join(d, `${id}.cast.gz`)
}

export interface AsciicastHeader {
  width: number
  height: number
  timestamp: number
  command?: string
  title?: string
  /** Gatehouse's session details (asciicast allows extra header keys). */
  gatehouse: Record<string, unknown>
}

/**
 * Writes events as they happen. Text that is not (yet) valid UTF-8 is held back while it may
 * be the start of a character split across chunks, so replay reproduces the exact bytes.
 */
export class AsciicastWriter {
  readonly #gzip: Gzip
  readonly #sink: RecordingSink
  readonly #start: number
  readonly #maxBytes: number
  readonly #onLimit: () => void
  readonly #carry = new Map<string, Buffer>()
  readonly #now: () => number
  /** The time of the last event written (events never go back in time). */
  #last = 0
  #bytes = 0
  #stopped: string | undefined
  #dirty = false
  #timer: NodeJS.Timeout | undefined
  #closed: Promise<void> | undefined

  constructor(
    sink: RecordingSink,
    header: AsciicastHeader,
    opts: {
      start: number
      maxBytes: number
      onLimit: () => void
      /** What `start` and event times are measured by (tests: a clock they move). */
      clock?: { now(): number }
    },
  ) {
    this.#sink = sink
    this.#start = opts.start
    const clock = opts.clock
    this.#now = clock ? () => clock.now() : () => performance.now()
    this.#maxBytes = opts.maxBytes
    this.#onLimit = opts.onLimit
    // Level 1: profiled, level 6 cost a third of the recorded relay's throughput (79 vs 107
    // MB/s for 100 MB of stdout) for a recording a few times smaller; terminal output still
    // compresses well at level 1.
    this.#gzip = createGzip({ level: 1 })
    this.#gzip.on('data', (d: Buffer) => sink.write(d))
    this.#line(JSON.stringify({ version: 2, ...header }))
  }

  /** Uncompressed bytes written so far. */
  get bytes(): number {
    return this.#bytes
  }

  get stopped(): string | undefined {
    return this.#stopped
  }

  /** Stops recording (the session may go on); the reason is the last event. */
  /**
   * True while gzip or the store lag more than BACKLOG_HIGH behind: the relay pauses both
   * sockets until `writable()` resolves, so a fast stream slows to the recorder's pace instead
   * of piling up in memory.
   */
  get backlogged(): boolean {
    return this.#gzip.writableLength + this.#sink.pending() > BACKLOG_HIGH
  }

  /** Resolves once the backlog is below the mark again. */
  async writable(): Promise<void> {
    while (this.backlogged && !this.#closed) await new Promise((r) => setTimeout(r, 5))
  }

  stop(reason: string): void {
    if (this.#stopped || this.#closed) return
    this.#flushCarry()
    this.#event('g', reason, true)
    this.#stopped = reason
  }

  /** Stream bytes; `at`: when they arrived (default now). */
  text(code: 'o' | 'e' | 'i', data: Buffer, at?: number): void {
    if (this.#stopped || data.length === 0) return
    const held = this.#carry.get(code)
    let bytes = held ? Buffer.concat([held, data]) : data
    this.#carry.delete(code)
    const cut = incompleteTail(bytes)
    if (cut > 0) {
      this.#carry.set(code, bytes.subarray(bytes.length - cut))
      bytes = bytes.subarray(0, bytes.length - cut)
      if (bytes.length === 0) return
    }
    if (isUtf8(bytes)) this.#event(code, bytes.toString('utf8'), false, at)
    else this.#event(`${code}b`, bytes.toString('base64'), false, at)
  }

  resize(width: number, height: number): void {
    this.#event('r', `${width}x${height}`)
  }

  exit(value: string): void {
    this.#flushCarry()
    this.#event('x', value, true)
  }

  note(code: 'c' | 'pi' | 'po' | 'g', data: unknown): void {
    this.#event(code, data)
  }

  #flushCarry(): void {
    for (const [code, b] of this.#carry) this.#event(`${code}b`, b.toString('base64'))
    this.#carry.clear()
  }

  #event(code: string, data: unknown, always = false, at?: number): void {
    // after close, nothing more (a late kill or limit must not write to an ended stream)
    if (this.#closed || (this.#stopped && !always)) return
    const t = Math.max(this.#last, Math.round((at ?? this.#now()) - this.#start) / 1000)
    this.#last = t
    const line = JSON.stringify([t, code, data])
    if (!always && this.#bytes + line.length + 1 > this.#maxBytes) {
      this.#onLimit()
      return
    }
    this.#line(line)
  }

  #line(line: string): void {
    const b = Buffer.from(line + '\n', 'utf8')
    this.#bytes += b.length
    this.#gzip.write(b)
    this.#dirty = true
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      void this.flush()
    }, FLUSH_MS)
  }

  /** Flushes compressed output to the store; what was flushed survives a crash. */
  async flush(): Promise<void> {
    if (!this.#dirty) return
    this.#dirty = false
    await new Promise<void>((res) => this.#gzip.flush(constants.Z_SYNC_FLUSH, () => res()))
    await this.#sink.flush()
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#flushCarry()
      if (this.#timer) clearTimeout(this.#timer)
      await new Promise<void>((res) => {
        this.#gzip.once('end', () => res())
        this.#gzip.end()
        this.#gzip.resume()
      })
      await this.#sink.close()
    })()
    return this.#closed
  }
}

/** Bytes at the end that may begin a UTF-8 character continued in the next chunk (0 to 3). */
function incompleteTail(b: Buffer): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!
    if ((byte & 0xc0) === 0x80) continue // continuation byte: look further back
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
    return need > back ? back : 0
  }
  return 0
}

export type AsciicastEvent = [number, string, unknown]

/**
 * The lines of a stream, ended by LF only, as asciicast's JSON lines are: their strings may
 * hold U+2028 and U+2029 raw (JSON.stringify leaves them), which node:readline takes for line
 * ends since Node 24 (it would cut an event in two). Every line that arrived counts, also when
 * the stream fails midway (then `failed`, and the last line may be partial).
 */
function lfLines(input: Readable): Promise<{ lines: string[]; failed: boolean }> {
  return new Promise((resolve) => {
    const decoder = new StringDecoder('utf8')
    const lines: string[] = []
    let carry = ''
    let done = false
    const take = (text: string): void => {
      const parts = (carry + text).split('\n')
      carry = parts.pop()!
      for (const p of parts) lines.push(p)
    }
    const finish = (failed: boolean): void => {
      if (done) return
      done = true
      take(decoder.end())
      if (carry) lines.push(carry)
      resolve({ lines, failed })
    }
    input.on('data', (chunk: Buffer) => {
      if (!done) take(decoder.write(chunk))
    })
    input.once('end', () => finish(false))
    input.once('error', () => finish(true))
  })
}

/** Reads a recording, also a truncated one (a crash mid-session): header, then events. */
export async function readRecording(
  stored: Readable,
): Promise<{ header: Record<string, unknown>; events: AsciicastEvent[]; truncated: boolean }> {
  // Everything up to the last flush decodes as it arrives; a file without its gzip trailer (the
  // writer never closed it) then ends in 'unexpected end of file': that is the truncation mark.
  const gunzip = createGunzip()
  stored.on('error', (e) => gunzip.destroy(e))
  stored.pipe(gunzip)
  const { lines, failed } = await lfLines(gunzip)
  let truncated = failed
  let header: Record<string, unknown> | undefined
  const events: AsciicastEvent[] = []
  for (const line of lines) {
    if (!line) continue
    let v: unknown
    try {
      v = JSON.parse(line)
    } catch {
      truncated = true // a half-written last line
      break
    }
    if (header === undefined) header = v as Record<string, unknown>
    else if (Array.isArray(v) && v.length === 3) events.push(v as AsciicastEvent)
  }
  if (!header) throw new Error('not a recording: no asciicast header')
  return { header, events, truncated }
}

/** The bytes a client received on stdout or stderr, from the events. */
export function streamBytes(events: readonly AsciicastEvent[], code: 'o' | 'e' | 'i'): Buffer {
  const parts: Buffer[] = []
  for (const [, c, d] of events) {
    if (c === code && typeof d === 'string') parts.push(Buffer.from(d, 'utf8'))
    else if (c === `${code}b` && typeof d === 'string') parts.push(Buffer.from(d, 'base64'))
  }
  return Buffer.concat(parts)
}
