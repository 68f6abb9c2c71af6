// Masking a text stream (pod logs, exec and attach output, a terminal's echo) as it arrives, so
// that no value a detector finds ever goes out in clear, whatever the chunking and the pauses.
//
// Text that cannot be part of a value goes out at once. Text that may still become one (a digit
// run that could grow into a card number, `AKIA…`, the start of a BEGIN line, `password: `) is
// held until it becomes a value (sent masked) or cannot become one any more (sent as it is),
// within two bounds, measured from when the held text arrived:
// - a marker (a keyword, a fixed prefix like `AKIA` or `eyJ`, a BEGIN line: no secret in it) is
//   held at most `markerMs`, then sent and still followed: if the value behind it arrives, the
//   rest is masked (`AKIA[MASKED:aws-access-key]`);
// - a value's secret part is held at most `holdMs`, or `MAX_HELD` bytes; then it is masked as it
//   stands (`[MASKED:card]`, whatever it would have become), and what continues it is dropped
//   into that placeholder until it can no longer be part of the value.
// Without a pause past a bound, the output is exactly what masking the whole text gives.
// Text is latin1 (one char per byte): bytes that are not replaced come out exactly as they came.
import {
  MAX_PEM_LENGTH,
  type DetectorName,
  type DetectorSet,
  type Finding,
  type Partial,
} from './detectors.ts'
import { defaultDetectors, replacementFor, type MaskResult, type Replacement } from './text.ts'

/** How long held text waits, in ms: a value's secret part, and a marker alone. */
export const HOLD_MS = 1000
export const MARKER_HOLD_MS = 250
/** The most a stream holds back (the longest value: a PEM key); past it, held text is masked. */
export const MAX_HELD = MAX_PEM_LENGTH

export interface StreamMaskerOptions {
  detectors?: DetectorSet
  replacement?: Replacement
  holdMs?: number
  markerMs?: number
}

export class TextStreamMasker {
  readonly #set: DetectorSet
  readonly #how: Replacement
  readonly #holdMs: number
  readonly #markerMs: number
  /** What arrived and still matters: `#text[0, #sent)` is decided (sent or dropped), the rest held. */
  #text = ''
  #sent = 0
  /** Where each held chunk starts in `#text`, and when it arrived. */
  #arrivedAt: number[] = []
  #arrivedTime: number[] = []
  /** Inside a private key masked whole: everything is dropped until this END line. */
  #inKey: string | undefined
  /** Masked as it stood: what continues these values (their starts in `#text`) is dropped. */
  #dropping: Partial[] | undefined
  /**
   * Holding an open private key (the leftmost value under way): until its END line arrives or a
   * bound runs out nothing else can go out, so a chunk is only searched for that END line.
   */
  #openKey: { bodyStart: number; endMarker: string; deadline: number } | undefined
  #deadlineAt: number | undefined
  /** What the last decision saw in `#text` (what trimming must keep). */
  #seen: { partials: Partial[]; findings: Finding[] } | undefined
  readonly counts: MaskResult['counts'] = {}

  constructor(opts: StreamMaskerOptions = {}) {
    this.#set = opts.detectors ?? defaultDetectors()
    this.#how = opts.replacement ?? { kind: 'placeholder' }
    this.#holdMs = opts.holdMs ?? HOLD_MS
    this.#markerMs = opts.markerMs ?? MARKER_HOLD_MS
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0)
  }

  /** When the oldest byte held back arrived (undefined: nothing held). */
  get heldSince(): number | undefined {
    return this.#sent < this.#text.length ? this.#timeOf(this.#sent) : undefined
  }

  /**
   * When a bound of the held text runs out so that something can go out: call `expire` then
   * (undefined: nothing held).
   */
  get deadline(): number | undefined {
    return this.#openKey ? this.#openKey.deadline : this.#deadlineAt
  }

  /** The first bound whose running out lets text out (another one may hold the same bytes). */
  #nextDeadline(): number | undefined {
    if (this.#sent >= this.#text.length || this.#inKey !== undefined || this.#dropping)
      return undefined
    const seen = this.#seen ?? {
      partials: this.#partials(),
      findings: this.#set.find(this.#text),
    }
    const holds = this.#holds(seen.partials)
    const times = [...new Set(holds.map((h) => h.until))].sort((a, b) => a - b)
    for (const t of times) {
      const plan = this.#plan(holds, seen.findings, t, false)
      if (plan.mask || plan.cut > this.#sent) return t
    }
    return undefined
  }

  /** After a decision: the next deadline, then what no longer matters is forgotten. */
  #settle(): void {
    this.#deadlineAt = this.#nextDeadline()
    this.#trim()
  }

  /** Bytes safe to send now (possibly empty); `now` is when the chunk arrived. */
  push(chunk: Buffer, now = 0): Buffer {
    return Buffer.from(this.pushText(chunk.toString('latin1'), now), 'latin1')
  }

  /** `push` for text already decoded (one char per unit: latin1, or a string's own chars). */
  pushText(text: string, now = 0): string {
    if (text.length === 0) return ''
    this.#arrivedAt.push(this.#text.length)
    this.#arrivedTime.push(now)
    const key = this.#openKey
    if (key) {
      const from = Math.max(key.bodyStart, this.#text.length - key.endMarker.length + 1)
      this.#text += text
      const within = this.#text.length - this.#sent <= MAX_HELD && now < key.deadline
      if (within && !this.#text.includes(key.endMarker, from)) return ''
      this.#openKey = undefined
    } else this.#text += text
    let out = this.#decide(now, false)
    if (this.#text.length - this.#sent > MAX_HELD) out += this.#decide(now, true)
    this.#settle()
    return out
  }

  /** What the bounds let out at `now`: markers shown, secret parts masked as they stand. */
  expire(now: number): Buffer {
    if (this.#openKey && now < this.#openKey.deadline) return Buffer.alloc(0)
    this.#openKey = undefined
    const out = this.#decide(now, false)
    this.#settle()
    return Buffer.from(out, 'latin1')
  }

  /**
   * The end of the stream: nothing more can make a held text a value, so it goes out masked as
   * whole-text masking would (a key without its END line masked to the end). `truncated`: the
   * stream was cut short (Gatehouse ended it, or a record keeps only its head): held secret
   * parts are masked as they stand instead.
   */
  end(opts: { truncated?: boolean } = {}): Buffer {
    return Buffer.from(this.endText(opts), 'latin1')
  }

  endText(opts: { truncated?: boolean } = {}): string {
    this.#openKey = undefined
    this.#deadlineAt = undefined
    let out = opts.truncated ? this.#decide(Infinity, true) : ''
    if (this.#inKey === undefined && this.#dropping === undefined)
      out += this.#emit(this.#text.length, this.#set.find(this.#text))
    this.#text = ''
    this.#sent = 0
    this.#arrivedAt = []
    this.#arrivedTime = []
    this.#inKey = undefined
    this.#dropping = undefined
    return out
  }

  /** Sends what is decided; with `force`, every bound counts as run out. */
  #decide(now: number, force: boolean): string {
    this.#openKey = undefined
    if (this.#inKey !== undefined && !this.#dropKey()) return ''
    if (this.#dropping && !this.#dropContinuation()) return ''
    const partials = this.#partials()
    const findings = this.#set.find(this.#text)
    this.#seen = { partials, findings }
    const holds = this.#holds(partials)
    const { cut, mask } = this.#plan(holds, findings, now, force)
    if (!mask) {
      const key = partials[0]
      if (key?.endMarker !== undefined)
        this.#openKey = {
          bodyStart: key.secretStart,
          endMarker: key.endMarker,
          // only a secret part running out lets anything out while the key is open
          deadline: Math.min(...holds.filter((h) => h.secret).map((h) => h.until)),
        }
      return this.#emit(cut, findings)
    }
    // anything held before it (a bound not yet run out) is masked with it: never held forever
    const at = this.#notInside(Math.min(mask.maskFrom, cut), findings)
    const out = this.#emit(at, findings) + `[MASKED:${mask.detector}]`
    this.counts[mask.detector] = (this.counts[mask.detector] ?? 0) + 1
    const key = partials.find((p) => p.endMarker !== undefined)
    if (key) this.#inKey = key.endMarker
    else this.#dropping = partials
    this.#sent = this.#text.length
    return out
  }

  /** Where the held text is cut at `now`, and which secret part (if any) is masked as it stands. */
  #plan(
    holds: Hold[],
    findings: Finding[],
    now: number,
    force: boolean,
  ): { cut: number; mask: Hold | undefined } {
    let cut = this.#text.length
    let mask: Hold | undefined
    for (const h of holds) {
      const ran = force || h.until <= now
      // a secret part holds until it is masked; a marker until its bound runs out
      if (h.secret || !ran) cut = Math.min(cut, h.pos)
      if (h.secret && ran && h.maskFrom < (mask?.maskFrom ?? Infinity)) mask = h
    }
    return { cut: this.#notInside(cut, findings), mask }
  }

  /**
   * What holds the text back, and until when: each partial value's marker part (shown when its
   * bound runs out) and secret part (masked then, from its marker too while that is held), and
   * the oldest held byte, whatever holds it (a value not yet whole: masked when its bound runs out).
   */
  #holds(partials: Partial[]): Hold[] {
    const out: Hold[] = []
    if (this.#sent >= this.#text.length) return out
    for (const p of partials) {
      const marker = Math.max(p.start, this.#sent)
      const secret = Math.min(Math.max(p.secretStart, marker), this.#text.length)
      if (marker < secret)
        out.push({
          pos: marker,
          until: this.#timeOf(marker) + this.#markerMs,
          secret: false,
          maskFrom: marker,
          detector: p.detector,
        })
      if (secret < this.#text.length)
        out.push({
          pos: secret,
          until: this.#timeOf(secret) + this.#holdMs,
          secret: true,
          maskFrom: marker,
          detector: p.detector,
        })
    }
    const oldest = this.#timeOf(this.#sent) + this.#holdMs
    out.push({
      pos: this.#text.length,
      until: oldest,
      secret: true,
      maskFrom: this.#sent,
      detector: partials[0]?.detector ?? 'card',
    })
    return out
  }

  #partials(): Partial[] {
    if (this.#inKey !== undefined || this.#dropping) return []
    return this.#set.partials(this.#text, 0)
  }

  /** A cut inside a finding moves to its start: the finding goes out whole or not yet. */
  #notInside(cut: number, findings: Finding[]): number {
    for (let i = findings.length - 1; i >= 0; i--) {
      const f = findings[i]!
      if (f.start < cut && f.end > cut) cut = Math.max(f.start, this.#sent)
    }
    return cut
  }

  /** `#text[#sent, to)` with the findings that end by `to` replaced; `#sent` moves to `to`. */
  #emit(to: number, findings: Finding[]): string {
    let out = ''
    let at = this.#sent
    for (const f of findings) {
      if (f.end <= at || f.end > to) continue
      // a value whose start already went out (a marker shown after a pause): its rest masked
      out += this.#text.slice(at, Math.max(at, f.start))
      out += replacementFor(f, this.#text.slice(f.start, f.end), this.#how)
      this.counts[f.detector] = (this.counts[f.detector] ?? 0) + 1
      at = f.end
    }
    out += this.#text.slice(at, to)
    this.#sent = Math.max(this.#sent, to)
    return out
  }

  /** Inside a key masked whole: drops up to its END line; true once past it. */
  #dropKey(): boolean {
    const endMarker = this.#inKey!
    const from = Math.max(0, this.#sent - endMarker.length + 1)
    const end = this.#text.indexOf(endMarker, from)
    if (end < 0) {
      this.#sent = this.#text.length
      return false
    }
    this.#sent = end + endMarker.length
    this.#inKey = undefined
    return true
  }

  /** Drops what may still continue the values masked as they stood; true once none can. */
  #dropContinuation(): boolean {
    let upTo = this.#sent
    const alive: Partial[] = []
    for (const p of this.#dropping!) {
      let end = this.#longestViable(p)
      if (end === this.#text.length) alive.push(p)
      // it became a value and ended: what followed it was never part of it (`[MASKED:card] ok`)
      else end = this.#set.matchEnd(this.#text, p.start, p.detector) ?? end
      if (end > upTo) upTo = end
    }
    this.#sent = upTo
    if (alive.length) {
      this.#dropping = alive
      return false
    }
    this.#dropping = undefined
    return true
  }

  /** The furthest end at which `p` is still a possible value (viability holds for prefixes). */
  #longestViable(p: Partial): number {
    let lo = this.#sent
    let hi = this.#text.length
    if (this.#set.viable(this.#text, p.start, p.detector)) return hi
    while (lo < hi - 1) {
      const mid = (lo + hi) >> 1
      if (this.#set.viable(this.#text.slice(0, mid), p.start, p.detector)) lo = mid
      else hi = mid
    }
    return lo
  }

  #timeOf(pos: number): number {
    let i = this.#arrivedAt.length - 1
    while (i > 0 && this.#arrivedAt[i]! > pos) i--
    return this.#arrivedTime[i] ?? 0
  }

  /** Forgets what no longer matters: decided text before the values still followed. */
  #trim(): void {
    let keep = this.#sent
    if (this.#inKey !== undefined) keep = Math.max(0, this.#sent - this.#inKey.length + 1)
    else {
      const seen = this.#dropping ? { partials: this.#dropping, findings: [] } : this.#seen
      for (const p of seen?.partials ?? []) keep = Math.min(keep, p.start)
      // a value whose start went out (a marker shown) and whose end has not
      for (const f of seen?.findings ?? []) if (f.end > this.#sent) keep = Math.min(keep, f.start)
      // one more character: lookbehinds and \b at the first one still see what preceded it
      keep = Math.max(0, keep - 1)
    }
    this.#seen = undefined
    if (keep === 0) return
    this.#text = this.#text.slice(keep)
    this.#sent -= keep
    if (this.#openKey) this.#openKey.bodyStart -= keep
    let first = 0
    while (first + 1 < this.#arrivedAt.length && this.#arrivedAt[first + 1]! <= keep) first++
    this.#arrivedAt = this.#arrivedAt.slice(first).map((a) => Math.max(0, a - keep))
    this.#arrivedTime = this.#arrivedTime.slice(first)
  }
}

interface Hold {
  /** where it holds the text from */
  pos: number
  until: number
  /** a secret part (masked when its bound runs out), or a marker (shown) */
  secret: boolean
  maskFrom: number
  detector: DetectorName
}

/**
 * Masks the head of a longer text (an audit record keeps the first bytes of a body): as whole
 * text, and a value that may go on past the cut is masked as it stands.
 */
export function maskHead(text: string, opts: StreamMaskerOptions = {}): MaskResult {
  const m = new TextStreamMasker(opts)
  const out = m.pushText(text) + m.endText({ truncated: true })
  return { text: out, counts: m.counts }
}
