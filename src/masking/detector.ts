// One detector: what it finds in a text, what of a text may still become one of its values (a
// stream holds that back), and the regular-expression detectors written in parts (lookbehind,
// marker, value, lookahead) from which both the pattern and its prefix closure are built.
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

export interface Detector {
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
export interface PatternParts {
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
/** Every expression a detector runs (its pattern, marker and prefix closures): checked for ReDoS. */
const EXPRESSIONS = new Map<DetectorName, readonly RegExp[]>()

/** The regular expressions a detector runs on text (none for private keys, found by a scan). */
export function detectorExpressions(name: DetectorName): readonly RegExp[] {
  return EXPRESSIONS.get(name) ?? []
}

/** A detector's pattern as one regular expression (none for private keys, found by a scan). */
export function detectorPattern(name: DetectorName): RegExp | undefined {
  return PATTERNS.get(name)
}

function patternOf(p: PatternParts): RegExp {
  return new RegExp(sourceOf(p, 'all'), p.flags ?? '')
}

export function regexDetector(
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
  EXPRESSIONS.set(name, [
    re,
    markerRe,
    new RegExp(closure, flags),
    new RegExp(markerOnly.source, flags),
  ])
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
