// Detectors of sensitive values in text: payment cards (Luhn, known issuer prefixes), US SSNs
// (invalid ranges excluded), IBANs (mod-97, per-country length), email addresses (optional),
// AWS access key ids and secret keys, JWTs, PEM private keys, GitHub/GitLab/Slack tokens, and
// generic secrets behind assignment keywords (entropy-checked).
//
// Every pattern is linear: no nested or overlapping unbounded quantifiers, bounded repetition
// only, and PEM blocks found by a scan rather than a lazy regex (test/unit/masking proves it on
// adversarial input). Detectors see text as latin1 (one char per byte), so masking never
// changes a byte it does not replace, even in binary streams.

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

interface Detector {
  name: DetectorName
  /** The longest value it finds (the stream masker keeps this much text back). */
  maxLength: number
  find(text: string, out: Finding[]): void
}

function regexDetector(
  name: DetectorName,
  re: RegExp,
  maxLength: number,
  opts: { valid?: (m: RegExpExecArray) => boolean; group?: number } = {},
): Detector {
  const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g')
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
        if (opts.valid && !opts.valid(m)) continue
        const g = opts.group ?? 0
        const value = m[g]
        if (value === undefined) continue
        const start = g === 0 ? m.index : m.index + m[0].indexOf(value)
        out.push({ start, end: start + value.length, detector: name })
      }
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
}

const ASSIGNMENT =
  /(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?token)["']?[ \t]{0,8}[:=][ \t]{0,8}["']?([^\s"'&,;]{8,128})/gi

const DETECTORS: Record<DetectorName, Detector> = {
  card: regexDetector('card', /(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d])/, 23, {
    valid: (m) => {
      const digits = m[0].replace(/[ -]/g, '')
      // separators, if any, must be consistent (one kind): "4111 1111 1111 1111" or "4111-1111-…"
      if (/ /.test(m[0]) && /-/.test(m[0])) return false
      return digits.length >= 12 && digits.length <= 19 && cardIssuer(digits) && luhn(digits)
    },
  }),
  ssn: regexDetector(
    'ssn',
    /(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])/,
    11,
  ),
  iban: regexDetector('iban', /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b/, 42, {
    valid: (m) => ibanValid(m[0]),
  }),
  email: regexDetector(
    'email',
    /\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}\b/,
    320,
  ),
  'aws-access-key': regexDetector('aws-access-key', /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/, 20),
  'aws-secret-key': regexDetector(
    'aws-secret-key',
    /\b(?:aws_?secret_?access_?key|secret_?access_?key|SecretAccessKey)["']?[ \t]{0,8}[:=][ \t]{0,8}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/i,
    100,
    { group: 1 },
  ),
  jwt: regexDetector(
    'jwt',
    /\beyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{16,1024}/,
    13_400,
  ),
  'private-key': privateKeyDetector,
  'github-token': regexDetector(
    'github-token',
    /\b(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b/,
    93,
  ),
  'gitlab-token': regexDetector('gitlab-token', /\bglpat-[A-Za-z0-9_-]{20}\b/, 26),
  'slack-token': regexDetector(
    'slack-token',
    /\b(?:xox[abposr]-[A-Za-z0-9-]{10,200}|https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]{20,120})/,
    240,
  ),
  'secret-assignment': {
    name: 'secret-assignment',
    maxLength: 200,
    find(text, out) {
      ASSIGNMENT.lastIndex = 0
      let m: RegExpExecArray | null
      while ((m = ASSIGNMENT.exec(text)) !== null) {
        const value = m[1]!
        // a secret, not a word or a placeholder: mixed characters, high entropy
        if (entropy(value) < 3.0 || /^(?:\*+|x+|<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+)$/i.test(value))
          continue
        const start = m.index + m[0].length - value.length
        out.push({ start, end: start + value.length, detector: 'secret-assignment' })
      }
    },
  },
}

export interface DetectorSet {
  readonly names: readonly DetectorName[]
  /** The longest value any detector finds: the stream masker's carry-over window. */
  readonly maxLength: number
  /** Findings, sorted by start, overlaps merged (the wider finding wins). */
  find(text: string): Finding[]
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
  }
}
