// The stream masker against random text with planted secrets, cut into random chunks: no
// planted value ever comes out, whatever the split, and without pauses the output is exactly
// what masking the whole text at once gives (nothing else changes, nothing is reordered or
// lost). Pauses: see test/unit/sessions/masking-timing.property.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { maskHead, TextStreamMasker } from '../../../src/masking/stream.ts'
import { maskText } from '../../../src/masking/text.ts'

const SECRETS = [
  '4111 1111 1111 1111',
  '5500000000000004',
  '078-05-1120',
  'DE89370400440532013000',
  'AKIAIOSFODNN7EXAMPLE',
  'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8vYXBwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU',
  'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  'glpat-aaaaaaaaaaaaaaaaaaaa',
  'password=Tr0ub4dor3xK9!',
  '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yBz\nAoGBAKq1\n-----END EC PRIVATE KEY-----',
]
/** The part of each secret that must never appear in the output. */
const CORE = [
  '1111 1111 1111',
  '5500000000000004',
  '078-05-1120',
  '370400440532013000',
  'IOSFODNN7EXAMPLE',
  'wJalrXUtnFEMI/K7MDENG',
  'eyJzdWIiOiJyZXBvOm9jdG8vYXBwIn0',
  '16C7e42F292c6912E7710c838347Ae178B4a',
  'glpat-aaaaaaaa',
  'Tr0ub4dor3xK9!',
  'MHcCAQEEIBkg4LVWM9nuwNSk3yBz',
]

const filler = fc.stringMatching(/^[a-z .:=\n\t{}"0-9é-]{0,60}$/)
const document = fc.array(fc.oneof(filler, fc.constantFrom(...SECRETS)), {
  minLength: 1,
  maxLength: 30,
})

test('planted secrets are masked whatever the chunking; output equals whole-text masking', () => {
  fc.assert(
    fc.property(
      document,
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (parts, cuts) => {
        // spaces around the parts keep a secret from gluing onto filler digits (which would make
        // it a different number, legitimately not a card)
        const text = parts.join(' \n ')
        const bytes = Buffer.from(text, 'latin1')
        const masker = new TextStreamMasker()
        const out: Buffer[] = []
        let at = 0
        let i = 0
        while (at < bytes.length) {
          const n = cuts[i++ % cuts.length]!
          out.push(masker.push(bytes.subarray(at, at + n)))
          at += n
        }
        out.push(masker.end())
        const streamed = Buffer.concat(out).toString('latin1')
        for (const core of CORE) assert.ok(!streamed.includes(core), `${core} leaked:\n${streamed}`)
        assert.equal(streamed, maskText(text).text)
      },
    ),
    { numRuns: 400 },
  )
})

test('binary bytes that are not secrets pass unchanged', () => {
  const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256))
  const m = new TextStreamMasker()
  const out = Buffer.concat([
    m.push(bytes.subarray(0, 1000)),
    m.push(bytes.subarray(1000)),
    m.end(),
  ])
  assert.ok(out.equals(bytes))
})

test('a private key longer than the limit is masked whole, until its END line', () => {
  const m = new TextStreamMasker()
  const body = 'QUJD'.repeat(10_000) // 40 KB, past the PEM limit
  const parts = [
    'log line\n-----BEGIN PRIVATE KEY-----\n',
    body,
    '\n-----END PRIV',
    'ATE KEY-----\nafter\n',
  ]
  const out = Buffer.concat([...parts.map((p) => m.push(Buffer.from(p))), m.end()]).toString()
  assert.equal(out, 'log line\n[MASKED:private-key]\nafter\n')
})

test('text that cannot start a value goes out at once, chunk by chunk', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[bdfijklmnoqruvwyz .,;/|\n]{1,80}$/), (text) => {
      const m = new TextStreamMasker()
      for (const ch of text) assert.equal(m.push(Buffer.from(ch)).toString(), ch)
    }),
  )
})

test('a value under way is held; at the end of the stream it goes out as whole-text masking', () => {
  const m = new TextStreamMasker()
  assert.equal(
    m.push(Buffer.from('card 4111111111111111 then ')).toString(),
    'card [MASKED:card] then ',
  )
  assert.equal(m.push(Buffer.from('ssn 078-05')).toString(), 'ssn ')
  assert.equal(
    m.push(Buffer.from('-1120 ok\n-----BEGIN RSA PRIVATE KEY-----\nMIIE')).toString(),
    '[MASKED:ssn] ok\n',
  )
  assert.equal(m.end().toString(), '[MASKED:private-key]')
})

test('a cut stream (truncated) masks a value under way as it stands', () => {
  const m = new TextStreamMasker()
  assert.equal(m.push(Buffer.from('card 41111111')).toString(), 'card ')
  assert.equal(m.end({ truncated: true }).toString(), '[MASKED:card]')
  const n = new TextStreamMasker()
  assert.equal(n.push(Buffer.from('card 41111111')).toString(), 'card ')
  // a natural end: nothing more can come, and 41111111 is no card
  assert.equal(n.end().toString(), '41111111')
})

test('the head of a longer text (an audit body cut at its limit) masks a value cut at its end', () => {
  assert.equal(maskHead('paid with 4111 1111 11').text, 'paid with [MASKED:card]')
  assert.equal(maskHead('key AKIAIOSF').text, 'key [MASKED:aws-access-key]')
  // only what may still become a value: a plain word cut short stays
  assert.equal(maskHead('all good, thanks for wai').text, 'all good, thanks for wai')
})
