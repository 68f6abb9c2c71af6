// Masking text: whole strings (values inside objects) and text streams (logs, exec output)
// whose secrets may be split across chunks or frames. Text is handled as latin1 (one char per
// byte), so bytes that are not replaced come out exactly as they went in, binary included.
import { createHmac } from 'node:crypto'
import {
  detectorSet,
  MAX_PEM_LENGTH,
  type DetectorName,
  type DetectorSet,
  type Finding,
} from './detectors.ts'

let defaults: DetectorSet | undefined
/** The default detector set, built once (maskText runs for every audit record). */
function defaultDetectors(): DetectorSet {
  return (defaults ??= detectorSet())
}

export type Replacement =
  /** `[MASKED:card]` */
  | { kind: 'placeholder' }
  /** keep the last N characters of the value (cards: the last four digits) */
  | { kind: 'partial'; keepLast: number }
  /** `[MASKED:card:hmac=3f9a...]`: equal values stay correlatable, none is revealed */
  | { kind: 'hmac'; key: Buffer }

export interface MaskResult {
  text: string
  /** How many values were replaced, by detector. */
  counts: Partial<Record<DetectorName, number>>
}

export function replacementFor(f: Finding, value: string, how: Replacement): string {
  if (how.kind === 'partial' && f.detector === 'card') {
    const digits = value.replace(/[^\d]/g, '')
    return `[MASKED:card:last4=${digits.slice(-Math.min(how.keepLast, 4))}]`
  }
  if (how.kind === 'hmac') {
    const mac = createHmac('sha256', how.key).update(value, 'latin1').digest('hex').slice(0, 16)
    return `[MASKED:${f.detector}:hmac=${mac}]`
  }
  return `[MASKED:${f.detector}]`
}

/** Masks every finding in `text`. */
export function maskText(
  text: string,
  opts: { detectors?: DetectorSet; replacement?: Replacement } = {},
): MaskResult {
  const set = opts.detectors ?? defaultDetectors()
  const how = opts.replacement ?? { kind: 'placeholder' }
  const findings = set.find(text)
  if (findings.length === 0) return { text, counts: {} }
  const counts: MaskResult['counts'] = {}
  let out = ''
  let at = 0
  for (const f of findings) {
    out += text.slice(at, f.start) + replacementFor(f, text.slice(f.start, f.end), how)
    at = f.end
    counts[f.detector] = (counts[f.detector] ?? 0) + 1
  }
  return { text: out + text.slice(at), counts }
}

/**
 * Masks a text stream chunk by chunk, so that a value split across chunks (or WebSocket frames)
 * is still caught. No detector but the PEM one matches across a line break, so everything up to
 * the last line break is final; the rest of the line waits for more text (at most `window`
 * characters: longer lines are cut there, as any value starting before the cut ends inside the
 * searched text). A private key block waits for its END line; one that grows past the PEM limit
 * is masked whole until its END arrives (fail closed). Output is delayed, never reordered.
 * Follow streams should call `flush()` when the stream goes quiet (a partial line then goes out
 * masked as it is).
 */
export class TextStreamMasker {
  readonly #set: DetectorSet
  readonly #how: Replacement
  readonly #window: number
  #pending = ''
  /** Inside an over-long private key: the END line being waited for. */
  #inKey: string | undefined
  readonly counts: MaskResult['counts'] = {}

  constructor(opts: { detectors?: DetectorSet; replacement?: Replacement; window?: number } = {}) {
    this.#set = opts.detectors ?? defaultDetectors()
    this.#how = opts.replacement ?? { kind: 'placeholder' }
    this.#window = opts.window ?? 4096
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0)
  }

  #count(name: DetectorName, n = 1): void {
    this.counts[name] = (this.counts[name] ?? 0) + n
  }

  /** Bytes safe to send now (possibly empty). */
  push(chunk: Buffer): Buffer {
    let text = this.#pending + chunk.toString('latin1')
    let out = ''
    if (this.#inKey !== undefined) {
      const end = text.indexOf(this.#inKey)
      if (end < 0) {
        // keep just enough to see an END line split across chunks
        this.#pending = text.slice(-(this.#inKey.length - 1))
        return Buffer.alloc(0)
      }
      text = text.slice(end + this.#inKey.length)
      this.#inKey = undefined
    }
    let safe = Math.max(text.lastIndexOf('\n') + 1, text.length - this.#window)
    const open = openPrivateKey(text)
    if (open && open.start < safe) {
      if (text.length - open.start <= MAX_PEM_LENGTH) safe = open.start
      else {
        // a key longer than any real one, or a stream trying to outlast the window: mask it all
        out += this.#mask(text.slice(0, open.start), true)
        out += `[MASKED:private-key]`
        this.#count('private-key')
        this.#inKey = open.endMarker
        this.#pending = ''
        return Buffer.from(out, 'latin1')
      }
    }
    // Search the whole text, keep the findings that start before the cut: each is whole (it
    // ends before the text does), and the cut moves past the last of them.
    let at = 0
    let cut = safe
    for (const f of this.#set.find(text)) {
      if (f.start >= safe) break
      out += text.slice(at, f.start) + replacementFor(f, text.slice(f.start, f.end), this.#how)
      at = f.end
      if (f.end > cut) cut = f.end
      this.#count(f.detector)
    }
    out += text.slice(at, cut)
    this.#pending = text.slice(cut)
    return Buffer.from(out, 'latin1')
  }

  #mask(text: string, count: boolean): string {
    if (!text) return ''
    const r = maskText(text, { detectors: this.#set, replacement: this.#how })
    if (count) for (const [k, n] of Object.entries(r.counts)) this.#count(k as DetectorName, n)
    return r.text
  }

  /** Sends what is kept back now, masked as it is (a follow stream gone quiet). */
  flush(): Buffer {
    if (this.#inKey !== undefined) return Buffer.alloc(0)
    const open = openPrivateKey(this.#pending)
    const upTo = open ? open.start : this.#pending.length
    const out = this.#mask(this.#pending.slice(0, upTo), true)
    this.#pending = this.#pending.slice(upTo)
    return Buffer.from(out, 'latin1')
  }

  /** The end of the stream: the kept-back tail, masked (an unterminated key entirely). */
  end(): Buffer {
    if (this.#inKey !== undefined) {
      this.#pending = ''
      return Buffer.alloc(0)
    }
    const open = openPrivateKey(this.#pending)
    let out = this.#mask(this.#pending.slice(0, open ? open.start : undefined), true)
    if (open) {
      out += '[MASKED:private-key]'
      this.#count('private-key')
    }
    this.#pending = ''
    return Buffer.from(out, 'latin1')
  }
}

const BEGIN_KEY = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g

/** The first private key block in `text` whose END line has not arrived, if any. */
function openPrivateKey(text: string): { start: number; endMarker: string } | undefined {
  BEGIN_KEY.lastIndex = 0
  let m: RegExpExecArray | null
  while ((m = BEGIN_KEY.exec(text)) !== null) {
    const endMarker = `-----END ${m[1]}-----`
    const end = text.indexOf(endMarker, m.index + m[0].length)
    if (end < 0) return { start: m.index, endMarker }
    BEGIN_KEY.lastIndex = end + endMarker.length
  }
  return undefined
}

/**
 * A request target with the values in its query masked (exec's `command=` arguments can carry
 * anything): each parameter is decoded, masked, and re-encoded only when something was masked,
 * so targets without findings stay byte for byte as they were.
 */
export function maskRequestTarget(target: string, opts: { detectors?: DetectorSet } = {}): string {
  const q = target.indexOf('?')
  if (q < 0) return target
  let changed = false
  const pairs = target
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      if (eq < 0) return pair
      let value: string
      try {
        value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '))
      } catch {
        value = pair.slice(eq + 1)
      }
      const masked = maskText(value, opts.detectors ? { detectors: opts.detectors } : {})
      if (masked.text === value) return pair
      changed = true
      return `${pair.slice(0, eq)}=${encodeURIComponent(masked.text)}`
    })
  return changed ? `${target.slice(0, q)}?${pairs.join('&')}` : target
}
