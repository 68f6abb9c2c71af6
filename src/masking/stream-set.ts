// The stream maskers of one response or session (a pod log; stdout and stderr of an exec; the
// streams of a recording), one per stream, and the one timer that lets their held text out when
// a hold bound runs out (stream.ts). Pod logs, the client's exec output and recordings all use
// this: there is no other "flush when quiet".
import type { DetectorSet } from './detectors.ts'
import { TextStreamMasker } from './stream.ts'
import type { Replacement } from './text.ts'

/** How a text stream is masked: gatehouse.yaml `masking:` detectors and replacement (or a policy's). */
export interface TextMasking {
  readonly detectors: DetectorSet
  readonly replacement: Replacement
}

/** Time and timers, injected so that tests can pause a stream without sleeping. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  // unref: a held stream never keeps the process alive
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface StreamMaskersOptions<K> {
  /** Absent: the default detectors and placeholders. */
  masking?: TextMasking | undefined
  clock?: Clock | undefined
  /** Text a bound let out (masked) while no chunk arrived; `since`: when it had arrived. */
  onRelease: (key: K, data: Buffer, since: number) => void
  holdMs?: number
  markerMs?: number
}

export class StreamMaskers<K> {
  readonly #maskers = new Map<K, TextStreamMasker>()
  readonly #opts: StreamMaskersOptions<K>
  readonly #clock: Clock
  #timer: unknown
  #timerAt: number | undefined
  #ended = 0
  #stopped = false

  constructor(opts: StreamMaskersOptions<K>) {
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
  }

  get clock(): Clock {
    return this.#clock
  }

  /** Values masked so far, all streams. */
  get masked(): number {
    let n = this.#ended
    for (const m of this.#maskers.values()) n += m.total
    return n
  }

  /** Masked bytes of `key` safe to send now. */
  push(key: K, data: Buffer): Buffer {
    let m = this.#maskers.get(key)
    if (!m) {
      const masking = this.#opts.masking
      m = new TextStreamMasker({
        ...(masking ? { detectors: masking.detectors, replacement: masking.replacement } : {}),
        ...(this.#opts.holdMs !== undefined ? { holdMs: this.#opts.holdMs } : {}),
        ...(this.#opts.markerMs !== undefined ? { markerMs: this.#opts.markerMs } : {}),
      })
      this.#maskers.set(key, m)
    }
    const out = m.push(data, this.#clock.now())
    this.#arm()
    return out
  }

  /** When the oldest byte `key` holds back arrived (undefined: it holds nothing). */
  heldSince(key: K): number | undefined {
    return this.#maskers.get(key)?.heldSince
  }

  /** The end of one stream: its held text, masked (a later push starts a new masker). */
  end(key: K, opts: { truncated?: boolean } = {}): Buffer {
    const m = this.#maskers.get(key)
    if (!m) return Buffer.alloc(0)
    this.#maskers.delete(key)
    const out = m.end(opts)
    this.#ended += m.total
    this.#arm()
    return out
  }

  endAll(opts: { truncated?: boolean } = {}): [K, Buffer][] {
    return [...this.#maskers.keys()].map((k) => [k, this.end(k, opts)])
  }

  /** No more timer (the stream's reader is gone); pushes and ends still work. */
  stop(): void {
    this.#stopped = true
    this.#clear()
  }

  #arm(): void {
    if (this.#stopped) return
    let at: number | undefined
    for (const m of this.#maskers.values()) {
      const d = m.deadline
      if (d !== undefined && (at === undefined || d < at)) at = d
    }
    if (at === this.#timerAt) return
    this.#clear()
    if (at === undefined) return
    this.#timerAt = at
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()))
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = undefined
  }

  #fire(): void {
    this.#timer = undefined
    this.#timerAt = undefined
    const now = this.#clock.now()
    for (const [key, m] of this.#maskers) {
      const d = m.deadline
      if (d === undefined || d > now) continue
      const since = m.heldSince ?? now
      const out = m.expire(now)
      if (out.length) this.#opts.onRelease(key, out, since)
    }
    this.#arm()
  }
}
