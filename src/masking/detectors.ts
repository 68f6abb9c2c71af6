// Detectors of sensitive values in text: payment cards (Luhn, known issuer prefixes), US SSNs
// (invalid ranges excluded), IBANs (mod-97, per-country length), email addresses (optional),
// AWS access key ids and secret keys, JWTs, PEM private keys, GitHub/GitLab/Slack tokens, and
// generic secrets behind assignment keywords (entropy-checked).
//
// Every pattern is linear: no nested or overlapping unbounded quantifiers, bounded repetition
// only, and PEM blocks found by a scan rather than a lazy regex (test/unit/masking proves it on
// adversarial input). Detectors see text as latin1 (one char per byte), so masking never
// changes a byte it does not replace, even in binary streams.
//
// Each pattern is written in parts (lookbehind, marker, value, lookahead): the marker (a
// keyword, `AKIA`, `eyJ`) is what a stream may show after a pause, the value never; the parts'
// prefix closure (prefixes.ts) tells a stream masker what may still become a value.

import { maxMatchLength, prefixSource } from './prefixes.ts'

export type DetectorName =
  | 'card'
  | 'ssn'
  | 'iban'
  | 'email'
  | 'aws-access-key'
  | 'aws-secret-key'
  | 'jwt'
  | 'private-key'
  | 'github-token'
  | 'gitlab-token'
  | 'slack-token'
  | 'secret-assignment'

export const DETECTOR_NAMES: readonly DetectorName[] = [
  'card',
  'ssn',
  'iban',
  'email',
  'aws-access-key',
  'aws-secret-key',
  'jwt',
  'private-key',
  'github-token',
  'gitlab-token',
  'slack-token',
  'secret-assignment',
]

/** A found value: [start, end) in the text, and which detector found it. */
export interface Finding {
  start: number
  end: number
  detector: DetectorName
}

/**
 * A value that may be under way at the end of a text (a stream has sent part of it so far): it
 * starts at `start`; its secret part (past a keyword, `AKIA`, `eyJ`, a BEGIN line) at
 * `secretStart`, which is the end of the text while only the marker has arrived.
 */
export interface Partial {
  start: number
  secretStart: number
  detector: DetectorName
  /** An open private key: what follows is the key until this END line. */
  endMarker?: string
}

interface Detector {
  name: DetectorName
  /** The longest value it finds (the stream masker keeps this much text back). */
  maxLength: number
  find(text: string, out: Finding[]): void
  /** The leftmost value from `from` on that may still be under way at the end of `text`. */
  partial(text: string, from: number): Partial | undefined
  /** Whether `text.slice(start)` may still be, or become, one of its values. */
  viable(text: string, start: number): boolean
  /** Where the value starting (its pattern matching) at `start` ends, if there is one. */
  matchEnd(text: string, start: number): number | undefined
}

/**
 * A pattern in parts: `before` (lookbehind), `marker` (the part that is no secret: a keyword,
 * a fixed prefix), `body` (the value), `after` (lookahead); several forms are alternatives.
 * `group`: the finding is the body alone (the keyword stays readable).
 */
interface PatternParts {
  before?: string
  forms: { marker?: string; body: string }[]
  after?: string
  flags?: string
  group?: boolean
}

function sourceOf(p: PatternParts, part: 'all' | 'marker'): string {
  const forms = p.forms.map((f) =>
    part === 'marker' ? (f.marker ?? '') : `${f.marker ?? ''}${p.group ? `(${f.body})` : f.body}`,
  )
  const body = forms.length === 1 ? forms[0]! : `(?:${forms.join('|')})`
  return part === 'marker'
    ? `${p.before ?? ''}(?:${body})`
    : `${p.before ?? ''}${body}${p.after ?? ''}`
}

const PATTERNS = new Map<DetectorName, RegExp>()

/** A detector's pattern as one regular expression (none for private keys, found by a scan). */
export function detectorPattern(name: DetectorName): RegExp | undefined {
  return PATTERNS.get(name)
}

function patternOf(p: PatternParts): RegExp {
  return new RegExp(sourceOf(p, 'all'), p.flags ?? '')
}

function regexDetector(
  name: DetectorName,
  parts: PatternParts,
  maxLength: number,
  opts: {
    valid?: (m: RegExpExecArray) => boolean
    /** A cheaper test on a partial value (its prefix closure cannot see, say, a Luhn check). */
    possible?: (partial: string) => boolean
  } = {},
): Detector {
  const flags = parts.flags ?? ''
  const re = patternOf(parts)
  PATTERNS.set(name, re)
  // `d`: the group's own indices (the value), not a search for its text in the match
  const global = new RegExp(re.source, flags + (parts.group ? 'gd' : 'g'))
  const hasMarker = parts.forms.some((f) => f.marker)
  const markerRe = new RegExp(sourceOf(parts, 'marker'), flags)
  const closure = prefixSource(re)
  const searchPartial = new RegExp(closure, flags + 'g')
  const atPartial = new RegExp(closure, flags + 'y')
  const markerOnly = new RegExp(prefixSource(markerRe), flags + 'y')
  const marker = new RegExp(markerRe.source, flags + 'y')
  const at = new RegExp(re.source, flags + (parts.group ? 'yd' : 'y'))
  // how far back from the end of a text a partial value can start
  const reach = Math.min(Math.max(maxLength, maxMatchLength(re)), 1 << 20) + 1
  const possible = (text: string, at: number): boolean =>
    !opts.possible || opts.possible(text.slice(at))
  const viable = (text: string, at: number): boolean => {
    atPartial.lastIndex = at
    return atPartial.test(text) && possible(text, at)
  }
  return {
    name,
    maxLength,
    find(text, out) {
      global.lastIndex = 0
      let m: RegExpExecArray | null
      while ((m = global.exec(text)) !== null) {
        if (m[0].length === 0) {
          global.lastIndex++
          continue
        }
        // not a value (a Luhn check failed): a value may still start inside it, as if the
        // search had begun there (a stream masker's search does begin at such places)
        if (opts.valid && !opts.valid(m)) {
          global.lastIndex = m.index + 1
          continue
        }
        const [start, end] = parts.group ? (m.indices?.[1] ?? [0, 0]) : [m.index, global.lastIndex]
        if (end > start) out.push({ start, end, detector: name })
      }
    },
    partial(text, from) {
      searchPartial.lastIndex = Math.max(from, text.length - reach)
      let m: RegExpExecArray | null
      while ((m = searchPartial.exec(text)) !== null && m[0].length > 0) {
        const start = m.index
        if (possible(text, start)) {
          let secretStart = start
          if (hasMarker) {
            markerOnly.lastIndex = start
            if (markerOnly.test(text)) secretStart = text.length
            else {
              marker.lastIndex = start
              const mm = marker.exec(text)
              if (mm) secretStart = start + mm[0].length
            }
          }
          return { start, secretStart, detector: name }
        }
        searchPartial.lastIndex = start + 1
      }
      return undefined
    },
    viable,
    matchEnd(text, start) {
      at.lastIndex = start
      const m = at.exec(text)
      if (!m || (opts.valid && !opts.valid(m))) return undefined
      return parts.group ? m.indices?.[1]?.[1] : at.lastIndex
    },
  }
}

export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/** Issuer prefixes and lengths: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro. */
function cardIssuer(d: string): boolean {
  const n = d.length
  const p2 = Number(d.slice(0, 2))
  const p3 = Number(d.slice(0, 3))
  const p4 = Number(d.slice(0, 4))
  if (d[0] === '4') return n === 13 || n === 16 || n === 19
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16
  if (p2 === 34 || p2 === 37) return n === 15
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19
  if (p2 === 36 || p2 === 38 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19
  if (p2 === 62) return n >= 16 && n <= 19
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 12 && n <= 19
  return false
}

/** IBAN lengths per country (ISO 13616 registry, the common ones). */
const IBAN_LENGTH: Record<string, number> = {
  AD: 24,
  AE: 23,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  TN: 24,
  TR: 26,
  UA: 29,
  VG: 24,
  XK: 20,
}

export function ibanValid(raw: string): boolean {
  const iban = raw.replace(/ /g, '')
  if (IBAN_LENGTH[iban.slice(0, 2)] !== iban.length) return false
  const rearranged = iban.slice(4) + iban.slice(0, 4)
  let rest = 0
  for (const c of rearranged) {
    const code = c.charCodeAt(0)
    const v = code >= 65 ? String(code - 55) : c
    for (const digit of v) rest = (rest * 10 + (digit.charCodeAt(0) - 48)) % 97
  }
  return rest === 1
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>()
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

const PEM_BEGIN = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g
/** The longest PEM private key a detector finds in one piece (a 16k-bit RSA key is ~13 KB). */
export const MAX_PEM_LENGTH = 16 * 1024
const PEM_BEGIN_PARTIAL = new RegExp(prefixSource(PEM_BEGIN), 'g')
const PEM_BEGIN_AT = new RegExp(PEM_BEGIN.source, 'y')

/** The first BEGIN line from `from` on whose END line is not in `text`. */
function openKey(
  text: string,
  from: number,
): { start: number; bodyStart: number; endMarker: string } | undefined {
  PEM_BEGIN.lastIndex = from
  let m: RegExpExecArray | null
  while ((m = PEM_BEGIN.exec(text)) !== null) {
    const endMarker = `-----END ${m[1]}-----`
    const end = text.indexOf(endMarker, m.index + m[0].length)
    if (end < 0) return { start: m.index, bodyStart: m.index + m[0].length, endMarker }
    PEM_BEGIN.lastIndex = end + endMarker.length
  }
  return undefined
}

const privateKeyDetector: Detector = {
  name: 'private-key',
  maxLength: MAX_PEM_LENGTH,
  find(text, out) {
    // Linear: each BEGIN looks for its END once, from where it stands, and the search goes on
    // after that END; a BEGIN with no END masks the rest of the text.
    PEM_BEGIN.lastIndex = 0
    let m: RegExpExecArray | null
    while ((m = PEM_BEGIN.exec(text)) !== null) {
      const endMarker = `-----END ${m[1]}-----`
      const end = text.indexOf(endMarker, m.index + m[0].length)
      if (end < 0) {
        // a key without its END line (cut off, or hiding): everything from BEGIN on (fail closed)
        out.push({ start: m.index, end: text.length, detector: 'private-key' })
        return
      }
      out.push({ start: m.index, end: end + endMarker.length, detector: 'private-key' })
      PEM_BEGIN.lastIndex = end + endMarker.length
    }
  },
  partial(text, from) {
    // an open key (its BEGIN line whole), or a BEGIN line still arriving at the very end
    const open = openKey(text, from)
    if (open)
      return {
        start: open.start,
        secretStart: open.bodyStart,
        detector: 'private-key',
        endMarker: open.endMarker,
      }
    PEM_BEGIN_PARTIAL.lastIndex = Math.max(from, text.length - 64)
    const m = PEM_BEGIN_PARTIAL.exec(text)
    return m?.[0]
      ? { start: m.index, secretStart: text.length, detector: 'private-key' }
      : undefined
  },
  viable(text, start) {
    PEM_BEGIN_AT.lastIndex = start
    const m = PEM_BEGIN_AT.exec(text)
    if (m) return !text.includes(`-----END ${m[1]}-----`, start + m[0].length)
    PEM_BEGIN_PARTIAL.lastIndex = start
    return PEM_BEGIN_PARTIAL.exec(text)?.index === start
  },
  matchEnd() {
    return undefined
  },
}

/**
 * Card lengths each 4-digit prefix allows (bit n: n digits), from `cardIssuer`, and for shorter
 * prefixes the union over their completions: a digit run no issuer starts with is no partial card.
 */
let cardLengths: Uint32Array[] | undefined
const CARD_LENGTHS = (): Uint32Array[] => (cardLengths ??= cardLengthTables())

function cardLengthTables(): Uint32Array[] {
  const four = new Uint32Array(10_000)
  for (let p = 0; p < 10_000; p++)
    for (let n = 12; n <= 19; n++)
      if (cardIssuer(String(p).padStart(4, '0') + '0'.repeat(n - 4))) four[p]! |= 1 << n
  const tables = [
    new Uint32Array(1),
    new Uint32Array(10),
    new Uint32Array(100),
    new Uint32Array(1000),
    four,
  ]
  for (let k = 3; k >= 0; k--)
    for (let p = 0; p < 10 ** (k + 1); p++) tables[k]![Math.floor(p / 10)]! |= tables[k + 1]![p]!
  return tables
}

function cardPossible(partial: string): boolean {
  if (/ /.test(partial) && /-/.test(partial)) return false
  const digits = partial.replace(/[ -]/g, '')
  const k = Math.min(4, digits.length)
  const lengths = CARD_LENGTHS()[k]![k ? Number(digits.slice(0, k)) : 0]!
  // some allowed length is at least as long as what has arrived
  return digits.length <= 19 && lengths >>> digits.length !== 0
}

const DETECTORS: Record<DetectorName, Detector> = {
  card: regexDetector(
    'card',
    { before: '(?<![\\d-])', forms: [{ body: '(?:\\d[ -]?){11,18}\\d' }], after: '(?![\\d])' },
    23,
    {
      valid: (m) => {
        const digits = m[0].replace(/[ -]/g, '')
        // separators, if any, must be consistent (one kind): "4111 1111 1111 1111" or "4111-1111-…"
        if (/ /.test(m[0]) && /-/.test(m[0])) return false
        return digits.length >= 12 && digits.length <= 19 && cardIssuer(digits) && luhn(digits)
      },
      possible: cardPossible,
    },
  ),
  ssn: regexDetector(
    'ssn',
    {
      before: '(?<![\\d-])',
      forms: [{ body: '(?!000|666|9\\d\\d)\\d{3}-(?!00)\\d{2}-(?!0000)\\d{4}' }],
      after: '(?![\\d-])',
    },
    11,
  ),
  iban: regexDetector(
    'iban',
    // the country code is no secret (a word in capitals is not held back past a pause)
    {
      before: '\\b',
      forms: [{ marker: '[A-Z]{2}', body: '\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?' }],
      after: '\\b',
    },
    42,
    { valid: (m) => ibanValid(m[0]) },
  ),
  email: regexDetector(
    'email',
    // before the @ it is a word like any other: only the part from the @ on is held as secret
    {
      before: '\\b',
      forms: [
        {
          marker: '[A-Za-z0-9._%+-]{1,64}',
          body: '@[A-Za-z0-9-]{1,63}(?:\\.[A-Za-z0-9-]{1,63}){1,8}',
        },
      ],
      after: '\\b',
    },
    320,
  ),
  'aws-access-key': regexDetector(
    'aws-access-key',
    {
      before: '\\b',
      forms: [{ marker: '(?:AKIA|ASIA|ABIA|ACCA)', body: '[A-Z0-9]{16}' }],
      after: '\\b',
    },
    20,
  ),
  'aws-secret-key': regexDetector(
    'aws-secret-key',
    {
      before: '\\b',
      forms: [
        {
          marker:
            '(?:aws_?secret_?access_?key|secret_?access_?key|SecretAccessKey)["\']?[ \\t]{0,8}[:=][ \\t]{0,8}["\']?',
          body: '[A-Za-z0-9/+]{40}',
        },
      ],
      after: '(?![A-Za-z0-9/+])',
      flags: 'i',
      group: true,
    },
    100,
  ),
  jwt: regexDetector(
    'jwt',
    {
      before: '\\b',
      forms: [
        {
          marker: 'eyJ',
          body: '[A-Za-z0-9_-]{8,4096}\\.eyJ[A-Za-z0-9_-]{8,8192}\\.[A-Za-z0-9_-]{16,1024}',
        },
      ],
    },
    13_400,
  ),
  'private-key': privateKeyDetector,
  'github-token': regexDetector(
    'github-token',
    {
      before: '\\b',
      forms: [
        { marker: '(?:ghp|gho|ghu|ghs|ghr)_', body: '[A-Za-z0-9]{36}' },
        { marker: 'github_pat_', body: '[A-Za-z0-9_]{82}' },
      ],
      after: '\\b',
    },
    93,
  ),
  'gitlab-token': regexDetector(
    'gitlab-token',
    { before: '\\b', forms: [{ marker: 'glpat-', body: '[A-Za-z0-9_-]{20}' }], after: '\\b' },
    26,
  ),
  'slack-token': regexDetector(
    'slack-token',
    {
      before: '\\b',
      forms: [
        { marker: 'xox[abposr]-', body: '[A-Za-z0-9-]{10,200}' },
        { marker: 'https:\\/\\/hooks\\.slack\\.com\\/services\\/', body: '[A-Za-z0-9/]{20,120}' },
      ],
    },
    240,
  ),
  'secret-assignment': regexDetector(
    'secret-assignment',
    {
      before: '(?<![A-Za-z0-9])',
      forms: [
        {
          marker:
            '(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?token)["\']?[ \\t]{0,8}[:=][ \\t]{0,8}["\']?',
          body: '[^\\s"\'&,;]{8,128}',
        },
      ],
      flags: 'i',
      group: true,
    },
    200,
    {
      // a secret, not a word or a placeholder: mixed characters, high entropy
      valid: (m) =>
        entropy(m[1]!) >= 3.0 && !/^(?:\*+|x+|<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+)$/i.test(m[1]!),
    },
  ),
}

export interface DetectorSet {
  readonly names: readonly DetectorName[]
  /** The longest value any detector finds: the stream masker's carry-over window. */
  readonly maxLength: number
  /** Findings, sorted by start, overlaps merged (the wider finding wins). */
  find(text: string): Finding[]
  /** Values that may be under way at the end of `text`: each detector's leftmost from `from` on. */
  partials(text: string, from: number): Partial[]
  /** Whether `text.slice(start)` may still be, or become, a value of `detector`. */
  viable(text: string, start: number, detector: DetectorName): boolean
  /** Where a value of `detector` whose pattern matches at `start` ends, if there is one. */
  matchEnd(text: string, start: number, detector: DetectorName): number | undefined
}

/** Default: everything but email (addresses are often not secret; switch them on by name). */
export const DEFAULT_DETECTORS: readonly DetectorName[] = DETECTOR_NAMES.filter(
  (n) => n !== 'email',
)

export function detectorSet(names: readonly DetectorName[] = DEFAULT_DETECTORS): DetectorSet {
  const detectors = names.map((n) => DETECTORS[n])
  return {
    names,
    maxLength: Math.max(...detectors.map((d) => d.maxLength)),
    find(text) {
      const all: Finding[] = []
      for (const d of detectors) d.find(text, all)
      all.sort((a, b) => a.start - b.start || b.end - a.end)
      const merged: Finding[] = []
      for (const f of all) {
        const last = merged[merged.length - 1]
        if (last && f.start < last.end) {
          if (f.end > last.end) last.end = f.end
          continue
        }
        merged.push({ ...f })
      }
      return merged
    },
    partials(text, from) {
      const out: Partial[] = []
      for (const d of detectors) {
        const p = d.partial(text, from)
        if (p) out.push(p)
      }
      return out.sort((a, b) => a.start - b.start)
    },
    viable(text, start, detector) {
      return DETECTORS[detector].viable(text, start)
    },
    matchEnd(text, start, detector) {
      return DETECTORS[detector].matchEnd(text, start)
    },
  }
}
