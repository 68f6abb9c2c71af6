// What a recording keeps of stdin, stdout and stderr: the same text with secrets and regulated
// values masked (src/masking), so no recording holds a card number, a key or a token in clear.
// Each stream is masked whole, across events (one stream masker each, src/masking/stream.ts): a
// value split over frames or written with pauses is masked like one written at once.
//
// Events keep the order and the time in which their bytes arrived: a stream's text held back
// (what may still become a value) holds back the later events of the other streams too, so a
// keystroke on stdin is recorded before the echo it caused, even when the echo went out first.
// An event's time is when its first byte arrived. The exit status and the end let everything out.
import { StreamMaskers, systemClock, type Clock, type TextMasking } from '../masking/stream-set.ts'
import type { AsciicastWriter } from './recording.ts'

export type { TextMasking } from '../masking/stream-set.ts'

type Code = 'o' | 'e' | 'i'

interface Waiting {
  code: Code
  at: number
  data: Buffer
}

export class MaskedStreams {
  readonly #writer: AsciicastWriter
  readonly #maskers: StreamMaskers<Code> | undefined
  readonly #clock: Clock
  /** Masked text waiting for text of another stream that arrived before it. */
  #waiting: Waiting[] = []

  /** `masking`: the records' profile; the default detectors and placeholders without one. */
  constructor(
    writer: AsciicastWriter,
    opts: { mask: boolean; masking?: TextMasking | undefined; clock?: Clock | undefined },
  ) {
    this.#writer = writer
    this.#clock = opts.clock ?? systemClock
    this.#maskers = opts.mask
      ? new StreamMaskers<Code>({
          masking: opts.masking,
          clock: this.#clock,
          onRelease: (code, data, since) => {
            this.#wait(code, since, data)
            this.#drain()
          },
        })
      : undefined
  }

  /** Values masked so far, all streams. */
  get masked(): number {
    return this.#maskers?.masked ?? 0
  }

  write(code: Code, data: Buffer): void {
    const maskers = this.#maskers
    if (!maskers) return this.#writer.text(code, data, this.#clock.now())
    const at = maskers.heldSince(code) ?? this.#clock.now()
    this.#wait(code, at, maskers.push(code, data))
    this.#drain()
  }

  /** The streams ended (the process exited): everything held goes into the recording now. */
  flushAll(): void {
    this.#endAll(false)
  }

  /** The session ended: held text is masked as it stands (the stream may have been cut). */
  end(): void {
    this.#endAll(true)
    this.#maskers?.stop()
  }

  #endAll(truncated: boolean): void {
    const maskers = this.#maskers
    if (!maskers) return
    for (const code of ['i', 'o', 'e'] as const) {
      const at = maskers.heldSince(code)
      const out = maskers.end(code, { truncated })
      if (at !== undefined) this.#wait(code, at, out)
    }
    this.#drain()
  }

  #wait(code: Code, at: number, data: Buffer): void {
    if (data.length === 0) return
    // kept in order of arrival (stable: a stream's own events never change places)
    let i = this.#waiting.length
    while (i > 0 && this.#waiting[i - 1]!.at > at) i--
    this.#waiting.splice(i, 0, { code, at, data })
  }

  /** Writes every event no held text arrived before. */
  #drain(): void {
    let oldest = Infinity
    for (const code of ['i', 'o', 'e'] as const)
      oldest = Math.min(oldest, this.#maskers?.heldSince(code) ?? Infinity)
    let n = 0
    while (n < this.#waiting.length && this.#waiting[n]!.at <= oldest) n++
    for (const w of this.#waiting.splice(0, n)) this.#writer.text(w.code, w.data, w.at)
  }
}
