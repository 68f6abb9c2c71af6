// Recordings are masked with the records profile they are given (gatehouse.yaml `masking:`),
// not only with the defaults.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { detectorSet } from '../../../src/masking/detectors.ts'
import { MaskedStreams } from '../../../src/sessions/masked-streams.ts'
import type { AsciicastWriter } from '../../../src/sessions/recording.ts'

function recorded(masking?: ConstructorParameters<typeof MaskedStreams>[1]['masking']) {
  const events: [string, string][] = []
  const writer = {
    text: (code: string, data: Buffer) => events.push([code, data.toString('latin1')]),
  } as unknown as AsciicastWriter
  const streams = new MaskedStreams(writer, { mask: true, masking })
  streams.write('o', Buffer.from('card 4111 1111 1111 1111\nssn 123-45-6789\n'))
  streams.end()
  return events.map(([, t]) => t).join('')
}

test('the records profile decides detectors and replacement', () => {
  assert.equal(recorded(), 'card [MASKED:card]\nssn [MASKED:ssn]\n')
  assert.match(
    recorded({
      detectors: detectorSet(['card']),
      replacement: { kind: 'hmac', key: Buffer.alloc(32, 1) },
    }),
    /^card \[MASKED:card:hmac=[0-9a-f]{16}\]\nssn 123-45-6789\n$/,
  )
})

test('a partial replacement is plain ASCII, so streams masked as latin1 keep it intact', () => {
  assert.equal(
    recorded({ detectors: detectorSet(['card']), replacement: { kind: 'partial', keepLast: 4 } }),
    'card [MASKED:card:last4=1111]\nssn 123-45-6789\n',
  )
})
