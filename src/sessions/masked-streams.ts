// What a recording keeps of stdin, stdout and stderr: the same text with secrets and regulated
// values masked (src/masking), so no recording holds a card number, a key or a token in clear.
// Each stream has its own masker; a value split across frames is still caught. A stream that
// goes quiet for QUIET_MS is flushed (a prompt without a newline is recorded without waiting
// for the next line); the exit status and the end flush everything first, so order is kept.
import type { DetectorSet } from '../masking/detectors.ts'
import { TextStreamMasker, type Replacement } from '../masking/text.ts'
import type { AsciicastWriter } from './recording.ts'

/** How a text stream is masked: gatehouse.yaml `masking:` detectors and replacement. */
export interface TextMasking {
  readonly detectors: DetectorSet
  readonly replacement: Replacement
}

const QUIET_MS = 150

type Code = 'o' | 'e' | 'i'

export class MaskedStreams {
  readonly #writer: AsciicastWriter
  readonly #maskers = new Map<Code, TextStreamMasker>()
  readonly #timers = new Map<Code, NodeJS.Timeout>()
  readonly #enabled: boolean
  readonly #masking: TextMasking | undefined
  /** Counts of maskers already ended. */
  #ended = 0

  /** `masking`: the records' profile; the default detectors and placeholders without one. */
  constructor(writer: AsciicastWriter, opts: { mask: boolean; masking?: TextMasking | undefined }) {
    this.#writer = writer
    this.#enabled = opts.mask
    this.#masking = opts.masking
  }

  /** Values masked so far, all streams. */
  get masked(): number {
    let n = this.#ended
    for (const m of this.#maskers.values()) n += m.total
    return n
  }

  write(code: Code, data: Buffer): void {
    if (!this.#enabled) return this.#writer.text(code, data)
    let m = this.#maskers.get(code)
    if (!m) this.#maskers.set(code, (m = new TextStreamMasker(this.#masking ?? {})))
    const out = m.push(data)
    if (out.length) this.#writer.text(code, out)
    clearTimeout(this.#timers.get(code))
    this.#timers.set(
      code,
      setTimeout(() => {
        const rest = m.flush()
        if (rest.length) this.#writer.text(code, rest)
      }, QUIET_MS).unref(),
    )
  }

  /** Everything held back goes into the recording now (before an exit status, at the end). */
  flushAll(): void {
    for (const [code, m] of this.#maskers) {
      clearTimeout(this.#timers.get(code))
      const rest = m.flush()
      if (rest.length) this.#writer.text(code, rest)
    }
  }

  /** The end: held-back text (an unterminated key, masked whole) is written. */
  end(): void {
    for (const [code, m] of this.#maskers) {
      clearTimeout(this.#timers.get(code))
      const rest = m.end()
      if (rest.length) this.#writer.text(code, rest)
      this.#ended += m.total
    }
    this.#maskers.clear()
  }
}
