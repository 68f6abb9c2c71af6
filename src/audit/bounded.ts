// Strings kept short and printable in records built from untrusted input (refusal summaries,
// quarantined records): long values keep their head and a SHA-256 of the whole.
import { createHash } from 'node:crypto'

/**
 * Printable ASCII only (anything else as \uXXXX), at most `max` characters: longer values keep
 * their head and a SHA-256 of the whole, so a record of a flood or a quarantined record stays
 * small and still matches the value it came from.
 */
export function boundedAscii(s: string, max: number): string {
  const ascii = s.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
  return ascii.length <= max ? ascii : bounded(ascii, max)
}

/** `s` when it fits in `max` characters, else its head and `…sha256:<hex>` of the whole. */
export function bounded(s: string, max: number): string {
  if (s.length <= max) return s
  const hash = createHash('sha256').update(s).digest('hex')
  return `${s.slice(0, Math.max(0, max - 72))}…sha256:${hash}`
}
