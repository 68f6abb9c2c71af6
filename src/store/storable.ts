// Strings as both databases can hold them, and database errors told apart from outages.
// PostgreSQL's text refuses U+0000 and its json refuses an escaped lone surrogate; SQLite's UTF-8
// conversion silently replaces a lone surrogate with U+FFFD. Any string an attacker influences
// (a claim, a name from the path, a header) reaches the indexed columns, so the database layer
// passes every bound parameter through storableText (sqlite.ts, postgres.ts): ordinary strings
// are unchanged, the others are escaped reversibly. (A `record` column is JSON text from
// JSON.stringify, which already escapes both, so a record read back is exactly the record
// written.)

/** Marks an escaped value: a noncharacter (U+FFFF) that no sender has a reason to use. */
export const ESCAPED_MARK = '\uffff'

/** U+0000, a lone surrogate (the u flag makes a pair one code point), or the mark itself. */
const UNSTORABLE = /\u0000|\p{Cs}|^\uffff/u

function needsEscape(s: string): boolean {
  return UNSTORABLE.test(s)
}

/**
 * `s` itself, or ESCAPED_MARK + the JSON string body of `s` (JSON.stringify writes U+0000 as
 * \u0000 and a lone surrogate as \udXXX). Reversible: see fromStorableText.
 */
export function storableText(s: string): string {
  return needsEscape(s) ? ESCAPED_MARK + JSON.stringify(s).slice(1, -1) : s
}

export function fromStorableText(s: string): string {
  return s.startsWith(ESCAPED_MARK) ? (JSON.parse(`"${s.slice(1)}"`) as string) : s
}

/** Bound SQL parameters with every string made storable (filters match what inserts wrote). */
export function storableParams(params: readonly unknown[]): unknown[] {
  return params.map((v) => (typeof v === 'string' ? storableText(v) : v))
}

/** SQLSTATE classes about a row's content (PostgreSQL appendix A), never about the server. */
const PG_CONTENT_CLASSES = new Set(['22', '23', '54'])
/** SQLite result codes about a row's content. */
const SQLITE_CONTENT_CODES = /^SQLITE_(TOOBIG|CONSTRAINT|MISMATCH|RANGE)/

/**
 * True when a database refused a write because of what the records contain (a value too long for
 * an index, an encoding it cannot hold), false for an outage (refused connection, timeout, full
 * disk, lock). Content errors are isolated record by record; outages are retried.
 */
export function isContentError(e: unknown): boolean {
  // A record that cannot be serialised (too deep, a cycle) can never be written either.
  if (e instanceof RangeError || e instanceof TypeError) return true
  const code = (e as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string') return false
  if (/^[0-9A-Z]{5}$/.test(code)) return PG_CONTENT_CLASSES.has(code.slice(0, 2))
  return SQLITE_CONTENT_CODES.test(code)
}
