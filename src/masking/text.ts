// Masking whole strings: values inside objects, bodies, request targets (text streams are
// stream.ts). Binary text is handled as latin1 (one char per byte), so bytes that are not
// replaced come out exactly as they went in.
import { createHmac } from 'node:crypto'
import { detectorSet, type DetectorName, type DetectorSet, type Finding } from './detectors.ts'

let defaults: DetectorSet | undefined
/** The default detector set, built once (maskText runs for every audit record). */
export function defaultDetectors(): DetectorSet {
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
