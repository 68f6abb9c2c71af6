// Text for a terminal: every CLI table, message and JSON output goes through here, because object
// names, IdP usernames, exec commands and unauthenticated URLs reach it. ESC (which starts CSI
// sequences such as `\e[8m` or erase-line, and OSC 52 clipboard writes), the other C0 and C1
// controls (U+009B is an 8-bit CSI, U+0085 a line break), CR, LF and TAB, bidi overrides and
// isolates and other invisible formatting characters are printed as `\u001b`-style escapes.
import { escapeInvisible, INVISIBLE } from '../kube/describe.ts'

/** One line of plain text, safe to print: invisible and control characters escaped. */
export function forTerminal(s: string): string {
  return escapeInvisible(s)
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves C1 controls, bidi and
 * invisible characters raw; these are escaped too (`\u202e` is still the same JSON string).
 */
export function jsonForTerminal(value: unknown, indent?: number): string {
  // Raw line breaks are the indentation's (JSON.stringify escapes those inside strings).
  return JSON.stringify(value, null, indent).replace(INVISIBLE, (c) =>
    c === '\n' ? c : jsonEscape(c),
  )
}

/** JSON's own escape: code points above U+FFFF as a surrogate pair of `\uXXXX`. */
function jsonEscape(c: string): string {
  let out = ''
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`
  return out
}
