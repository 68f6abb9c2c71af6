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
import { cardIssuer, cardPossible, entropy, ibanValid, luhn } from './checks.ts'
import {
  DETECTOR_NAMES,
  regexDetector,
  type Detector,
  type DetectorName,
  type Finding,
  type Partial,
} from './detector.ts'
import { MAX_PEM_LENGTH, privateKeyDetector } from './private-key.ts'

export { DETECTOR_NAMES, detectorPattern } from './detector.ts'
export type { DetectorName, Finding, Partial } from './detector.ts'
export { entropy, ibanValid, luhn, MAX_PEM_LENGTH }

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
      // a local part starts where a run of its characters does (\b would let every '.', '%',
      // '+' or '-' inside a run start another scan of up to 64 characters)
      before: '(?<![A-Za-z0-9._%+-])',
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
      // Not \b: '-' and '_' are base64url but not word characters, so with \b every `eyJ` after
      // a '-' in a long run would start a scan of up to 4 KiB ('eyJ-' repeated: quadratic in
      // practice, 415 ms for 66 KB; found by recheck). A JWT starts where a base64url run does.
      before: '(?<![A-Za-z0-9_-])',
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
