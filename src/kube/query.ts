// A request's query string as the API server reads it: Go's url.ParseQuery (net/url), strictly.
// Keys keep their values in order (repeated `command=` is an argv); a malformed escape or a ';'
// is an error, as Go answers 400 or drops the pair where JavaScript's URLSearchParams would
// guess. Parameters are compared by their decoded form: `a%3Db`, `a=b` spelled `%61=b`, `+` for
// a space and any order of distinct keys all reach the API server as the same parameters.

/** Decoded parameters in first-appearance order of their keys; values in the order sent. */
export type GoQuery = ReadonlyMap<string, readonly string[]>

/** Go's url.PathUnescape / QueryUnescape core, strictly: undefined on a malformed escape or bad UTF-8. */
export function unescapeStrict(s: string): string | undefined {
  if (!s.includes('%')) return s
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) return undefined
  const bytes = Buffer.from(
    s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  )
  const text = bytes.toString('utf8')
  // Go keeps invalid UTF-8 bytes as they are, JavaScript would substitute U+FFFD: refuse.
  if (!Buffer.from(text, 'utf8').equals(bytes)) return undefined
  return text
}

/**
 * Go's url.ParseQuery over the raw query (the part after '?', without it), with Go >= 1.17's
 * refusal of ';'. Returns the parameters, or why they cannot be read with certainty.
 */
export function parseGoQuery(raw: string): { query: GoQuery } | { error: string } {
  const out = new Map<string, string[]>()
  if (raw === '') return { query: out }
  if (raw.includes(';')) return { error: "the query contains ';', which Go's URL parser drops" }
  for (const pair of raw.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const rawKey = eq < 0 ? pair : pair.slice(0, eq)
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1)
    const key = unescapeStrict(rawKey.replace(/\+/g, ' '))
    const value = unescapeStrict(rawValue.replace(/\+/g, ' '))
    if (key === undefined || value === undefined)
      return {
        error: `the query parameter '${rawKey.slice(0, 40)}' has malformed percent-encoding`,
      }
    const list = out.get(key) ?? []
    list.push(value)
    out.set(key, list)
  }
  return { query: out }
}

/** The raw query of a request target (`/path?a=b` → `a=b`); '' without one. */
export function rawQueryOf(target: string): string {
  const q = target.indexOf('?')
  return q < 0 ? '' : target.slice(q + 1)
}

/** The parameters sorted by key (values keep their order): one spelling for equal queries. */
export function canonicalQuery(query: GoQuery): [string, string[]][] {
  return [...query.entries()]
    .map(([k, v]): [string, string[]] => [k, [...v]])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}
