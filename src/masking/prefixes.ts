// Prefix closures of regular expressions: from a detector's pattern, the pattern of every text
// that may still become a match once more text arrives. A stream masker holds such a text back
// (it can be the start of a card number, `AKIA…`, a BEGIN line) instead of sending it in clear.
//
// Built from the pattern's syntax tree (@eslint-community/regexpp, ESLint's parser), so the
// closure cannot drift from the pattern it closes. For a sequence `a b c` the closure is
// `a b P(c) | a P(b) | P(a)`; for `x{m,n}` it is `x{0,n-1} P(x)`; a character's is itself or
// nothing. It errs on the side of holding, never of releasing:
// - a lookbehind or `\b` at a position with its characters present is exact; one at the very
//   end of the prefix is skipped (the characters it would look at have not arrived);
// - a negative lookahead is kept: what it forbids cannot match a shorter text (ours contain no
//   end-sensitive assertions) unless it matches the longer one too;
// - a positive lookahead is dropped (it could fail only because its text has not arrived).
import { parseRegExpLiteral, type AST } from '@eslint-community/regexpp'

/**
 * The closure's source: matches, up to the end of the text, a prefix of a match (plus what
 * follows it); callers ignore the empty match at the very end.
 */
export function prefixSource(re: RegExp): string {
  const literal = parseRegExpLiteral(re)
  return `(?:${alternatives(literal.pattern.alternatives)})$`
}

/** The longest text a pattern matches (Infinity for unbounded repetition). */
export function maxMatchLength(re: RegExp): number {
  return longest(parseRegExpLiteral(re).pattern)
}

function alternatives(alts: readonly AST.Alternative[]): string {
  return alts.map((a) => sequence(a.elements, 0)).join('|')
}

function sequence(elements: readonly AST.Element[], i: number): string {
  const e = elements[i]
  if (e === undefined) return ''
  const rest = sequence(elements, i + 1)
  const whole = complete(e)
  // `e` complete, then a prefix of the rest; or the text ends inside `e`
  return `(?:${whole}${rest}|${prefix(e)})`
}

/** `e` as it must appear when the text goes on past it. */
function complete(e: AST.Element): string {
  if (e.type === 'Assertion') {
    if (e.kind === 'lookahead' && !e.negate) return ''
    if (e.kind === 'start' || e.kind === 'end')
      throw new TypeError(`prefix closure: '${e.raw}' is not supported in a detector`)
  }
  return e.raw
}

function prefix(e: AST.Element): string {
  switch (e.type) {
    case 'Assertion':
      return ''
    case 'Character':
    case 'CharacterSet':
    case 'CharacterClass':
    case 'ExpressionCharacterClass':
      return `(?:${e.raw})?`
    case 'Group':
    case 'CapturingGroup':
      return `(?:${alternatives(e.alternatives)})`
    case 'Quantifier': {
      const inner = prefix(e.element)
      if (e.max === 0) return ''
      if (e.max === 1) return inner
      const reps = e.max === Infinity ? '*' : `{0,${e.max - 1}}`
      return `(?:(?:${e.element.raw})${reps}${inner})`
    }
    default:
      throw new TypeError(`prefix closure: '${e.raw}' is not supported in a detector`)
  }
}

function longest(node: AST.Node): number {
  switch (node.type) {
    case 'Pattern':
    case 'Group':
    case 'CapturingGroup':
      return Math.max(0, ...node.alternatives.map(longest))
    case 'Alternative':
      return node.elements.reduce((n, e) => n + longest(e), 0)
    case 'Quantifier': {
      const one = longest(node.element)
      return node.max === 0 || one === 0 ? 0 : node.max * one
    }
    case 'Assertion':
      return 0
    default:
      return 1
  }
}
