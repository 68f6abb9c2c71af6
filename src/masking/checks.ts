// Checks that tell a value from a look-alike: the Luhn check and issuer prefixes of card numbers
// (also for a card number still arriving), IBAN check digits and lengths, Shannon entropy.

export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/** Issuer prefixes and lengths: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro. */
export function cardIssuer(d: string): boolean {
  const n = d.length
  const p2 = Number(d.slice(0, 2))
  const p3 = Number(d.slice(0, 3))
  const p4 = Number(d.slice(0, 4))
  if (d[0] === '4') return n === 13 || n === 16 || n === 19
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16
  if (p2 === 34 || p2 === 37) return n === 15
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19
  if (p2 === 36 || p2 === 38 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19
  if (p2 === 62) return n >= 16 && n <= 19
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 12 && n <= 19
  return false
}

/** IBAN lengths per country (ISO 13616 registry, the common ones). */
const IBAN_LENGTH: Record<string, number> = {
  AD: 24,
  AE: 23,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  TN: 24,
  TR: 26,
  UA: 29,
  VG: 24,
  XK: 20,
}

export function ibanValid(raw: string): boolean {
  const iban = raw.replace(/ /g, '')
  if (IBAN_LENGTH[iban.slice(0, 2)] !== iban.length) return false
  const rearranged = iban.slice(4) + iban.slice(0, 4)
  let rest = 0
  for (const c of rearranged) {
    const code = c.charCodeAt(0)
    const v = code >= 65 ? String(code - 55) : c
    for (const digit of v) rest = (rest * 10 + (digit.charCodeAt(0) - 48)) % 97
  }
  return rest === 1
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>()
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

/**
 * Card lengths each 4-digit prefix allows (bit n: n digits), from `cardIssuer`, and for shorter
 * prefixes the union over their completions: a digit run no issuer starts with is no partial card.
 */
let cardLengths: Uint32Array[] | undefined
const CARD_LENGTHS = (): Uint32Array[] => (cardLengths ??= cardLengthTables())

function cardLengthTables(): Uint32Array[] {
  const four = new Uint32Array(10_000)
  for (let p = 0; p < 10_000; p++)
    for (let n = 12; n <= 19; n++)
      if (cardIssuer(String(p).padStart(4, '0') + '0'.repeat(n - 4))) four[p]! |= 1 << n
  const tables = [
    new Uint32Array(1),
    new Uint32Array(10),
    new Uint32Array(100),
    new Uint32Array(1000),
    four,
  ]
  for (let k = 3; k >= 0; k--)
    for (let p = 0; p < 10 ** (k + 1); p++) tables[k]![Math.floor(p / 10)]! |= tables[k + 1]![p]!
  return tables
}

export function cardPossible(partial: string): boolean {
  if (/ /.test(partial) && /-/.test(partial)) return false
  const digits = partial.replace(/[ -]/g, '')
  const k = Math.min(4, digits.length)
  const lengths = CARD_LENGTHS()[k]![k ? Number(digits.slice(0, k)) : 0]!
  // some allowed length is at least as long as what has arrived
  return digits.length <= 19 && lengths >>> digits.length !== 0
}
