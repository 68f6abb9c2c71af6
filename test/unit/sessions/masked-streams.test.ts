// Recordings are masked with the records profile they are given (gatehouse.yaml `masking:`),
// not only with the defaults; events keep the order their bytes arrived in (issue 14: stdin
// was recorded after the echo it caused).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { detectorSet } from '../../../src/masking/detectors.ts'
import { MaskedStreams } from '../../../src/sessions/masked-streams.ts'
import type { AsciicastWriter } from '../../../src/sessions/recording.ts'
import { ManualClock } from '../support/manual-clock.ts'

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

/** A recording's events kept in memory, on a clock the test moves. */
function recordedOn(clock: ManualClock) {
  const events: { code: string; at: number; data: string }[] = []
  const writer = {
    text: (code: string, data: Buffer, at: number) =>
      events.push({ code, at, data: data.toString('latin1') }),
  } as unknown as AsciicastWriter
  return { events, streams: new MaskedStreams(writer, { mask: true, clock }) }
}

/** Types `keys` one by one, `everyMs` apart; the terminal echoes each 5 ms later. */
function typeWithEcho(streams: MaskedStreams, clock: ManualClock, keys: string, everyMs: number) {
  for (const key of keys) {
    streams.write('i', Buffer.from(key))
    clock.advance(5)
    streams.write('o', Buffer.from(key === '\r' ? '\r\n' : key))
    clock.advance(everyMs - 5)
  }
}

test('a keystroke is recorded before the echo it caused, also when the echo was let out first', () => {
  const clock = new ManualClock()
  const { events, streams } = recordedOn(clock)
  // 'e', 'h' and 'p' may start a value (a JWT, a webhook URL, a password=): held a moment each
  typeWithEcho(streams, clock, 'echo help\r', 100)
  streams.flushAll()
  let stdin = ''
  let echoed = ''
  for (const e of events) {
    if (e.code === 'i') stdin += e.data
    else echoed += e.data.replace(/\r\n/g, '\r')
    assert.ok(stdin.startsWith(echoed), `echo ${JSON.stringify(echoed)} before its keys`)
  }
  assert.equal(stdin, 'echo help\r')
  const times = events.map((e) => e.at)
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
    'events in the order of arrival',
  )
})

test('a card number typed at a terminal: held, then masked as it stands; Enter shows at once', () => {
  const clock = new ManualClock()
  const { events, streams } = recordedOn(clock)
  typeWithEcho(streams, clock, 'echo 4111111111111111\r', 150)
  streams.flushAll()
  const joined = (code: string) =>
    events
      .filter((e) => e.code === code)
      .map((e) => e.data)
      .join('')
  assert.equal(joined('i'), 'echo [MASKED:card]\r')
  assert.equal(joined('o'), 'echo [MASKED:card]\r\n')
  // the placeholder is stamped with the first digit's arrival, not when the bound ran out
  const first = events.find((e) => e.code === 'i' && e.data.startsWith('[MASKED'))!
  assert.equal(first.at, 5 * 150)
})
