// "Did you mean": the known word (a command, an option) closest to a misspelt one, if it is
// close enough to be a misspelling of it (a third of its letters, at least one, swaps counting one).

/** Edit distance counting a swap of neighbours as one edit, for "did you mean" on a misspelling. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  return d[a.length]![b.length]!
}

export function suggestion(word: string, known: Iterable<string>, prefix = ''): string {
  let best: [string, number] | undefined
  for (const k of known) {
    const d = distance(word, k)
    if (d <= Math.max(1, Math.floor(k.length / 3)) && (!best || d < best[1])) best = [k, d]
  }
  return best ? ` (did you mean '${prefix}${best[0]}'?)` : ''
}
