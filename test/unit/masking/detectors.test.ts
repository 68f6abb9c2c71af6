// Each detector on values it must catch and look-alikes it must leave alone, and every pattern
// on adversarial input: the work grows linearly with the input (no catastrophic backtracking).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  DETECTOR_NAMES,
  detectorSet,
  ibanValid,
  luhn,
  type DetectorName,
} from '../../../src/masking/detectors.ts'
import { maskText } from '../../../src/masking/text.ts'

const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB',
  'aFDrBz9vFqU4yt9Yl5pR0Zu9o0dL6e9aA8dG2k1Y0hH5QmQJZpR0Zu9o0dL6e9aA',
  '-----END RSA PRIVATE KEY-----',
].join('\n')

const cases: Record<DetectorName, { hits: string[]; misses: string[] }> = {
  card: {
    hits: [
      '4111111111111111',
      '4111 1111 1111 1111',
      '5500-0000-0000-0004',
      '378282246310005',
      '6011111111111117',
    ],
    misses: [
      '4111111111111112', // Luhn fails
      '1234567812345670', // Luhn passes, no issuer starts with 1
      '41111111111111111111111', // part of a longer number
      '2026-11-30 12:34:56.789', // a timestamp
      '4111 1111-1111 1111', // mixed separators
      'uid 1000740000',
    ],
  },
  ssn: {
    hits: ['078-05-1120', '123-45-6789'],
    misses: [
      '000-12-3456',
      '666-12-3456',
      '912-34-5678',
      '123-00-4567',
      '123-45-0000',
      '1123-45-67890',
      '123456789',
    ],
  },
  iban: {
    hits: ['DE89370400440532013000', 'GB82 WEST 1234 5698 7654 32', 'FR1420041010050500013M02606'],
    misses: ['DE89370400440532013001', 'XX89370400440532013000', 'DE8937040044053201300'],
  },
  email: {
    hits: ['ops@example.com', 'first.last+tag@mail.example.co.uk'],
    misses: ['user@localhost', '@example.com'],
  },
  'aws-access-key': {
    hits: ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A'],
    misses: ['AKIAIOSFODNN7EXAMPL', 'akiaiosfodnn7example'],
  },
  'aws-secret-key': {
    hits: [
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    ],
    misses: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'], // no keyword: 40 base64 chars are too common
  },
  jwt: {
    hits: [
      'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8vYXBwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU',
    ],
    misses: ['eyJhbGciOiJSUzI1NiJ9', 'eyJ.eyJ.x'],
  },
  'private-key': {
    hits: [PEM, '-----BEGIN PRIVATE KEY-----\nMIIE…cut off'],
    misses: [
      '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
      '-----BEGIN CERTIFICATE-----',
    ],
  },
  'github-token': {
    hits: ['ghp_16C7e42F292c6912E7710c838347Ae178B4a', `github_pat_${'A1'.repeat(41)}`],
    misses: ['ghp_short', 'ghx_16C7e42F292c6912E7710c838347Ae178B4a'],
  },
  'gitlab-token': {
    hits: ['glpat-xxxxxxxxxxxxxxxxxxxx'.replace(/x/g, 'a')],
    misses: ['glpat-short'],
  },
  'slack-token': {
    hits: [
      'xoxb-1234567890-abcdefghijkl',
      'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
    ],
    misses: ['xoxz-1234567890-abcdefghijkl', 'https://hooks.slack.com/'],
  },
  'secret-assignment': {
    hits: [
      'password=Tr0ub4dor3xK9!',
      'DB_PASSWORD: "s3cr3t-P@ssw0rd-2026"',
      'api_key=9f8e7d6c5b4a39281706',
    ],
    misses: [
      'password=********',
      'token=${TOKEN}',
      'password: <redacted>',
      'secret=aaaaaaaaaaaa',
      'password_policy=strong',
    ],
  },
}

describe('detectors', () => {
  for (const name of DETECTOR_NAMES) {
    test(`${name}: true and false positives`, () => {
      const set = detectorSet([name])
      for (const hit of cases[name].hits) {
        const text = `before ${hit} after`
        const found = set.find(text)
        assert.equal(found.length, 1, `${name} should find ${JSON.stringify(hit)}`)
        const r = maskText(text, { detectors: set })
        assert.ok(!r.text.includes(hit), `${hit} still in ${r.text}`)
        assert.ok(r.text.startsWith('before ') && r.text.includes(`[MASKED:${name}]`), r.text)
      }
      for (const miss of cases[name].misses) {
        const found = set.find(`before ${miss} after`)
        assert.deepEqual(found, [], `${name} should not find ${JSON.stringify(miss)}`)
      }
    })
  }

  test('checksums', () => {
    assert.equal(luhn('79927398713'), true)
    assert.equal(luhn('79927398710'), false)
    assert.equal(ibanValid('GB82WEST12345698765432'), true)
    assert.equal(ibanValid('GB82WEST12345698765433'), false)
  })

  test('replacements: partial keeps the last four digits of a card; hmac is stable per key', () => {
    const card = 'card 4111 1111 1111 1111 end'
    assert.equal(
      maskText(card, { replacement: { kind: 'partial', keepLast: 4 } }).text,
      'card [MASKED:card:last4=1111] end',
    )
    const key = Buffer.from('k1')
    const a = maskText('x AKIAIOSFODNN7EXAMPLE y', { replacement: { kind: 'hmac', key } }).text
    const b = maskText('z AKIAIOSFODNN7EXAMPLE', { replacement: { kind: 'hmac', key } }).text
    const c = maskText('z AKIAIOSFODNN7EXAMPLE', {
      replacement: { kind: 'hmac', key: Buffer.from('k2') },
    }).text
    const mac = (s: string) => /hmac=([0-9a-f]{16})/.exec(s)?.[1]
    assert.equal(mac(a), mac(b))
    assert.notEqual(mac(a), mac(c))
    assert.ok(!a.includes('AKIA'))
  })
})

describe('no catastrophic backtracking', () => {
  // Inputs built to make a backtracking engine try many ways to match: long runs of what a
  // pattern accepts, broken at the end. Linear work: 10x the input costs about 10x the time
  // (measured as a ratio, so a slow machine does not fail it; quadratic work would be ~100x).
  const adversarial: Record<string, (n: number) => string> = {
    digits: (n) => '4'.repeat(n) + 'x',
    'digits and spaces': (n) => '4 '.repeat(n / 2) + '-',
    dashes: (n) => '123-45-'.repeat(n / 7),
    iban: (n) => 'DE89 ' + 'AAAA '.repeat(n / 5),
    email: (n) => 'a'.repeat(n / 2) + '@' + 'b.'.repeat(n / 4),
    jwt: (n) => 'eyJ' + 'a'.repeat(n / 2) + '.eyJ' + 'b'.repeat(n / 2),
    'pem begins': (n) => '-----BEGIN PRIVATE KEY-----\n'.repeat(n / 28),
    assignments: (n) => 'password='.repeat(n / 9),
    slack: (n) => 'xoxb-'.repeat(n / 5),
  }
  const set = detectorSet(DETECTOR_NAMES)
  const time = (s: string): number => {
    const t0 = performance.now()
    set.find(s)
    return performance.now() - t0
  }
  for (const [name, make] of Object.entries(adversarial)) {
    test(`${name}: linear in the input`, () => {
      const small = make(20_000)
      const large = make(200_000)
      time(small) // warm up
      const ts = Math.max(0.5, Math.min(time(small), time(small), time(small)))
      const tl = Math.min(time(large), time(large))
      assert.ok(
        tl < ts * 40,
        `${name}: ${ts.toFixed(2)} ms for 20 KB, ${tl.toFixed(2)} ms for 200 KB`,
      )
      assert.ok(tl < 2000, `${name}: ${tl.toFixed(0)} ms for 200 KB`)
    })
  }
})
