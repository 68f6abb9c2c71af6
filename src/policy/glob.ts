// Glob patterns of policies: `*` matches any run of characters (also none), `?` one character,
// everything else literally. One syntax for names, namespaces, groups, claims and paths, compiled
// once per policy reload into an anchored regular expression without backtracking hazards
// (a pattern has no nested quantifiers, so matching is linear in the input).

export type Matcher = (value: string) => boolean

const ANY: Matcher = () => true

export function compileGlob(pattern: string): Matcher {
  if (pattern === '*') return ANY
  if (!/[*?]/.test(pattern)) return (v) => v === pattern
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
    .join('')
    // Consecutive stars mean the same as one; collapsing them keeps matching linear.
    .replace(/(\.\*)+/g, '.*')
  const re = new RegExp(`^${source}$`, 's')
  return (v) => re.test(v)
}

/** Matches when any pattern matches; `undefined` (field omitted) matches everything. */
export function compileGlobs(patterns: readonly string[] | undefined): Matcher {
  if (patterns === undefined) return ANY
  const matchers = patterns.map(compileGlob)
  if (matchers.includes(ANY)) return ANY
  if (matchers.length === 1) return matchers[0]!
  return (v) => matchers.some((m) => m(v))
}
