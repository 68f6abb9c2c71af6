// The private-key detector: PEM blocks found by a scan (BEGIN, then its own END line), not by a
// lazy regular expression; a BEGIN with no END masks the rest of the text (fail closed).
import type { Detector } from './detector.ts'
import { prefixSource } from './prefixes.ts'

const PEM_BEGIN = /-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----/g
/** The longest PEM private key a detector finds in one piece (a 16k-bit RSA key is ~13 KB). */
export const MAX_PEM_LENGTH = 16 * 1024
const PEM_BEGIN_PARTIAL = new RegExp(prefixSource(PEM_BEGIN), 'g')
const PEM_BEGIN_AT = new RegExp(PEM_BEGIN.source, 'y')

/** The first BEGIN line from `from` on whose END line is not in `text`. */
function openKey(
  text: string,
  from: number,
): { start: number; bodyStart: number; endMarker: string } | undefined {
  PEM_BEGIN.lastIndex = from
  let m: RegExpExecArray | null
  while ((m = PEM_BEGIN.exec(text)) !== null) {
    const endMarker = `-----END ${m[1]}-----`
    const end = text.indexOf(endMarker, m.index + m[0].length)
    if (end < 0) return { start: m.index, bodyStart: m.index + m[0].length, endMarker }
    PEM_BEGIN.lastIndex = end + endMarker.length
  }
  return undefined
}

export const privateKeyDetector: Detector = {
  name: 'private-key',
  maxLength: MAX_PEM_LENGTH,
  find(text, out) {
    // Linear: each BEGIN looks for its END once, from where it stands, and the search goes on
    // after that END; a BEGIN with no END masks the rest of the text.
    PEM_BEGIN.lastIndex = 0
    let m: RegExpExecArray | null
    while ((m = PEM_BEGIN.exec(text)) !== null) {
      const endMarker = `-----END ${m[1]}-----`
      const end = text.indexOf(endMarker, m.index + m[0].length)
      if (end < 0) {
        // a key without its END line (cut off, or hiding): everything from BEGIN on (fail closed)
        out.push({ start: m.index, end: text.length, detector: 'private-key' })
        return
      }
      out.push({ start: m.index, end: end + endMarker.length, detector: 'private-key' })
      PEM_BEGIN.lastIndex = end + endMarker.length
    }
  },
  partial(text, from) {
    // an open key (its BEGIN line whole), or a BEGIN line still arriving at the very end
    const open = openKey(text, from)
    if (open)
      return {
        start: open.start,
        secretStart: open.bodyStart,
        detector: 'private-key',
        endMarker: open.endMarker,
      }
    PEM_BEGIN_PARTIAL.lastIndex = Math.max(from, text.length - 64)
    const m = PEM_BEGIN_PARTIAL.exec(text)
    return m?.[0]
      ? { start: m.index, secretStart: text.length, detector: 'private-key' }
      : undefined
  },
  viable(text, start) {
    PEM_BEGIN_AT.lastIndex = start
    const m = PEM_BEGIN_AT.exec(text)
    if (m) return !text.includes(`-----END ${m[1]}-----`, start + m[0].length)
    PEM_BEGIN_PARTIAL.lastIndex = start
    return PEM_BEGIN_PARTIAL.exec(text)?.index === start
  },
  matchEnd() {
    return undefined
  },
}
