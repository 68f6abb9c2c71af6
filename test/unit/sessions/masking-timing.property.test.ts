// Masking whatever the timing (issue 14): text with planted values, cut into random chunks with
// random pauses between them (none, short, past the marker bound, past the hold bound, many
// seconds, mid-value), through the real maskers of each path, on a clock the test moves (no
// sleeping): a pod log followed (`logs -f`), exec stdout and stderr in every dialect (WebSocket
// and SPDY re-framing), and a terminal's echo of typed keys. No planted value is ever in clear
// in what the client receives, nor in the recording joined per stream, nor anywhere in the
// recording's file: not whole, and no run of it holding 4 of its secret characters (each prefix,
// suffix and middle part: a card's last digits, the IBAN's tail, a token's end, the JWT's
// signature; bound justified at MIN_SECRET and in docs/masking.md). Without pauses the client
// gets exactly what masking the whole text gives.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { detectorSet } from '../../../src/masking/detectors.ts'
import { defaultObjectRules } from '../../../src/masking/objects.ts'
import type { MaskingProfile } from '../../../src/masking/profile.ts'
import { TextMaskingTransform } from '../../../src/masking/responses.ts'
import { maskText } from '../../../src/masking/text.ts'
import { createClientRewriter } from '../../../src/sessions/client-masking.ts'
import { MaskedStreams } from '../../../src/sessions/masked-streams.ts'
import {
  AsciicastWriter,
  readRecording,
  streamBytes,
  type RecordingSink,
} from '../../../src/sessions/recording.ts'
import { dialectOf, type Dialect } from '../../../src/kube/remote-command.ts'
import type { SpdyStreamTypes } from '../../../src/sessions/tap.ts'
import {
  encodeServerFrame,
  Opcode,
  WebSocketFrameReader,
} from '../../../src/sessions/websocket-frames.ts'
import { encodeFrame, FLAG_FIN, FrameParser } from '../../../src/spdy/index.ts'
import { ManualClock } from '../support/manual-clock.ts'

const SECRETS = [
  '4111 1111 1111 1111',
  '4111111111111111',
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
/**
 * What must never be in clear: each value's secret part, shortened to what no conservative
 * masking can leave (a marker such as `AKIA`, a BEGIN line or `password=` may show after a pause).
 */
const CORE = [
  '1111 1111',
  '41111111',
  '11111111',
  '55000000',
  '078-05-1120',
  '37040044',
  'IOSFODNN',
  'wJalrXUtnFEMI',
  'eyJzdWIiOiJyZXBv',
  'hbGciOiJSUzI1NiJ9',
  '16C7e42F292c69',
  'aaaaaaaaaaaa',
  'Tr0ub4dor3',
  'MHcCAQEEIBkg',
  'AoGBAKq1',
]

const NUM_RUNS = Number(process.env['GATEHOUSE_PROPERTY_RUNS'] ?? 150)

const PROFILE: MaskingProfile = {
  detectors: detectorSet(),
  replacement: { kind: 'placeholder' },
  objects: defaultObjectRules(),
}

const filler = fc.stringMatching(/^[a-z .:=\n\t{}"0-9-]{0,40}$/)
/** Parts joined by ' \n ': a value never glues onto filler digits (then it is another number). */
const documentText = fc
  .array(fc.oneof(filler, fc.constantFrom(...SECRETS)), { minLength: 1, maxLength: 10 })
  .map((parts) => parts.join(' \n '))

/** Pauses: mostly none or short, often past the 250 ms marker bound or the 1 s hold bound. */
const pause = fc.oneof(
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 240 }) },
  { weight: 2, arbitrary: fc.integer({ min: 240, max: 1100 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 8000 }) },
)
const schedule = fc.array(fc.tuple(fc.integer({ min: 1, max: 24 }), pause), {
  minLength: 1,
  maxLength: 40,
})

/** The text cut by the schedule (cycled) into chunks, each with the pause after it. */
function chunks(text: string, plan: [number, number][]): [Buffer, number][] {
  const bytes = Buffer.from(text, 'latin1')
  const out: [Buffer, number][] = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const [size, wait] = plan[i % plan.length]!
    out.push([bytes.subarray(at, at + size), wait])
    at += size
  }
  return out
}

function assertNoCore(text: string, where: string): void {
  for (const core of CORE)
    assert.ok(!text.includes(core), `${core} in clear in ${where}:\n${JSON.stringify(text)}`)
}

/**
 * Each planted value, its secret part (`value` without the marker before `from` and the
 * trailer after `to`: `AKIA`, `password=`, a BEGIN and END line carry no secret) and how many
 * of its secret characters (letters, digits, `+/!_`; not the spaces, dashes, dots and line
 * breaks between groups) a run of it needs to be sensitive.
 */
interface Planted {
  value: string
  from: number
  to: number
  min: number
}
const planted = (value: string, marker = '', min = MIN_SECRET, trailer = ''): Planted => ({
  value,
  from: marker.length,
  to: value.length - trailer.length,
  min,
})
/**
 * The oracle's bound: no run of a value holding 4 of its secret characters may be in clear (a
 * card's or an SSN's last four digits included). The masker holds every character of a value's
 * secret part and, past a bound, masks what it held and drops what continues it, so none shows.
 * 4 is the strictest bound that tells something: runs of 1 to 3 also occur in the placeholders
 * (`S`, `KE` of `[MASKED:…]`), in a value's own markers (a JWT's second `eyJ`) and in the
 * filler, and an oracle at 3 fails on those, not on a value.
 */
const MIN_SECRET = 4
const PEM_BEGIN = '-----BEGIN EC PRIVATE KEY-----\n'
const PEM_END = '\n-----END EC PRIVATE KEY-----'
const PLANTED: Planted[] = [
  planted('4111 1111 1111 1111'),
  planted('4111111111111111'),
  planted('5500000000000004'),
  planted('078-05-1120'),
  planted('DE89370400440532013000', 'DE'),
  planted('AKIAIOSFODNN7EXAMPLE', 'AKIA'),
  planted(SECRETS[6]!, 'aws_secret_access_key='),
  planted(SECRETS[7]!, 'eyJ'),
  planted('ghp_16C7e42F292c6912E7710c838347Ae178B4a', 'ghp_'),
  planted('glpat-aaaaaaaaaaaaaaaaaaaa', 'glpat-'),
  planted('password=Tr0ub4dor3xK9!', 'password='),
  planted(SECRETS[11]!, PEM_BEGIN, MIN_SECRET, PEM_END),
]
assert.deepEqual(
  PLANTED.map((p) => p.value),
  SECRETS,
)
const significant = /[A-Za-z0-9+/!_]/

/**
 * Every sensitive run of a planted value: from each position, the shortest run that holds
 * `min` secret characters (a longer run contains it). Together: the whole value, each prefix
 * and suffix past its first or last `min` secret characters (a card's last digits, the IBAN's
 * tail, a token's end, the JWT's signature, a key's last line), and each middle part.
 */
function sensitiveRuns(p: Planted): string[] {
  const runs = new Set<string>()
  for (let i = 0; i < p.value.length; i++) {
    let n = 0
    for (let j = i; j < p.value.length; j++) {
      if (j >= p.from && j < p.to && significant.test(p.value[j]!)) n++
      if (n === p.min) {
        runs.add(p.value.slice(i, j + 1))
        break
      }
    }
  }
  return [...runs]
}
const RUNS = PLANTED.flatMap((p) => sensitiveRuns(p).map((run) => ({ run, of: p.value })))

/**
 * A checker for one planted text: asserts that no sensitive run of a planted value is in
 * `text`, raw or JSON-escaped (the recording's file), unless the text around the planted
 * values (the filler) holds that run itself: then it is no sign of the value.
 */
function noPlantedInClear(planted: string) {
  let filler = planted
  for (const v of SECRETS) filler = filler.split(v).join(' \n ')
  const runs = RUNS.filter((r) => !filler.includes(r.run))
  return (text: string, where: string): void => {
    for (const { run, of } of runs) {
      const escaped = JSON.stringify(run).slice(1, -1)
      assert.ok(
        !text.includes(run) && !text.includes(escaped),
        `${JSON.stringify(run)} of ${JSON.stringify(of)} in clear in ${where}:\n${JSON.stringify(text)}`,
      )
    }
  }
}

/** A recording kept in memory, read back as its streams joined and as the whole file. */
function recorder(clock: ManualClock) {
  const stored: Buffer[] = []
  const sink: RecordingSink = {
    write: (d) => void stored.push(d),
    pending: () => 0,
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  }
  const writer = new AsciicastWriter(
    sink,
    { width: 80, height: 24, timestamp: 0, gatehouse: {} },
    { start: clock.now(), maxBytes: 1 << 24, onLimit: () => undefined, clock },
  )
  const streams = new MaskedStreams(writer, { mask: true, masking: PROFILE, clock })
  return {
    streams,
    async read() {
      await writer.close()
      const file = Buffer.concat(stored)
      const r = await readRecording(Readable.from([file]))
      return {
        events: r.events,
        joined: (code: 'o' | 'e' | 'i') => streamBytes(r.events, code).toString('latin1'),
        file: r.events.map((e) => JSON.stringify(e)).join('\n'),
        /** The file as stored, decompressed, each line's time left out (its digits are no value). */
        stored: gunzipSync(file)
          .toString('latin1')
          .replace(/^\[[0-9.]+,/gm, '['),
      }
    },
  }
}

async function readAll(t: TextMaskingTransform): Promise<string> {
  const out: Buffer[] = []
  t.on('data', (d: Buffer) => out.push(d))
  await new Promise((resolve, reject) => t.on('end', resolve).on('error', reject))
  return Buffer.concat(out).toString('latin1')
}

describe('masking whatever the timing', () => {
  test('logs -f: the client and the pod-log recording', async () => {
    await fc.assert(
      fc.asyncProperty(documentText, schedule, async (text, plan) => {
        const clock = new ManualClock()
        const client = new TextMaskingTransform(PROFILE, true, clock)
        const received = readAll(client)
        const rec = recorder(clock)
        let paused = false
        for (const [chunk, wait] of chunks(text, plan)) {
          client.write(chunk)
          rec.streams.write('o', chunk)
          clock.advance(wait)
          paused ||= wait > 0
        }
        client.end()
        rec.streams.flushAll()
        rec.streams.end()
        const out = await received
        const inClear = noPlantedInClear(text)
        assertNoCore(out, 'the client')
        inClear(out, 'the client')
        if (!paused) assert.equal(out, maskText(text).text)
        const r = await rec.read()
        assertNoCore(r.joined('o'), 'the recording (stdout joined)')
        assertNoCore(r.file, 'the recording file')
        inClear(r.joined('o'), 'the recording (stdout joined)')
        inClear(r.stored, 'the recording file')
      }),
      { numRuns: NUM_RUNS },
    )
  })

  const DIALECTS = [
    'channel.k8s.io',
    'base64.channel.k8s.io',
    'v4.channel.k8s.io',
    'v4.base64.channel.k8s.io',
    'v5.channel.k8s.io',
    'spdy',
  ]

  test('exec stdout and stderr: the client in every dialect, and the recording', async () => {
    await fc.assert(
      fc.asyncProperty(
        documentText,
        documentText,
        schedule,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        fc.constantFrom(...DIALECTS),
        async (stdout, stderr, plan, order, name) => {
          const clock = new ManualClock()
          const session = execSession(name, clock)
          const rec = recorder(clock)
          const queues = { o: chunks(stdout, plan), e: chunks(stderr, plan.slice().reverse()) }
          let paused = false
          for (let i = 0; queues.o.length || queues.e.length; i++) {
            const wanted = order[i % order.length] ? 'o' : 'e'
            const which = queues[wanted].length ? wanted : wanted === 'o' ? 'e' : 'o'
            const next = queues[which].shift()!
            session.output(which, next[0])
            rec.streams.write(which, next[0])
            clock.advance(next[1])
            paused ||= next[1] > 0
          }
          session.exit()
          rec.streams.flushAll()
          rec.streams.end()
          assert.equal(clock.pending, 0, 'no timer left behind')
          const seen = session.received()
          const inClear = noPlantedInClear(`${stdout} \n ${stderr}`)
          assertNoCore(seen.o, `stdout (${name})`)
          assertNoCore(seen.e, `stderr (${name})`)
          inClear(seen.o, `stdout (${name})`)
          inClear(seen.e, `stderr (${name})`)
          if (!paused) {
            assert.equal(seen.o, maskText(stdout).text)
            assert.equal(seen.e, maskText(stderr).text)
          }
          const r = await rec.read()
          assertNoCore(r.joined('o'), 'the recording (stdout joined)')
          assertNoCore(r.joined('e'), 'the recording (stderr joined)')
          assertNoCore(r.file, 'the recording file')
          inClear(r.joined('o'), 'the recording (stdout joined)')
          inClear(r.joined('e'), 'the recording (stderr joined)')
          inClear(r.stored, 'the recording file')
        },
      ),
      { numRuns: NUM_RUNS },
    )
  })

  test('TTY: keys typed with pauses, their echo, and the recording of both', async () => {
    await fc.assert(
      fc.asyncProperty(
        documentText,
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), pause), { minLength: 1, maxLength: 30 }),
        fc.constantFrom(...DIALECTS),
        async (typed, plan, name) => {
          const clock = new ManualClock()
          const session = execSession(name, clock)
          const rec = recorder(clock)
          for (const [keys, wait] of chunks(typed + '\r', plan)) {
            rec.streams.write('i', keys)
            // a cooked terminal echoes each key (and Enter as CR LF) on stdout
            const echo = Buffer.from(keys.toString('latin1').replace(/\r/g, '\r\n'), 'latin1')
            session.output('o', echo)
            rec.streams.write('o', echo)
            clock.advance(wait)
          }
          session.exit()
          rec.streams.flushAll()
          rec.streams.end()
          assert.equal(clock.pending, 0, 'no timer left behind')
          const inClear = noPlantedInClear(typed)
          assertNoCore(session.received().o, `the echo (${name})`)
          inClear(session.received().o, `the echo (${name})`)
          const r = await rec.read()
          assertNoCore(r.joined('i'), 'the recording (stdin joined)')
          assertNoCore(r.joined('o'), 'the recording (echo joined)')
          assertNoCore(r.file, 'the recording file')
          inClear(r.joined('i'), 'the recording (stdin joined)')
          inClear(r.joined('o'), 'the recording (echo joined)')
          inClear(r.stored, 'the recording file')
        },
      ),
      { numRuns: NUM_RUNS },
    )
  })
})

/** An exec session's upstream side in a dialect, through the client rewriter, read as the client would. */
function execSession(name: string, clock: ManualClock) {
  const sent: Buffer[] = []
  const spdy = name === 'spdy'
  const dialect: Dialect = spdy
    ? { transport: 'spdy', subprotocol: 'v4.channel.k8s.io', version: 4 }
    : (dialectOf(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: ${name}\r\n`,
      ) as Dialect)
  const types: SpdyStreamTypes = {
    streamType: (id) => ({ 1: 'stdout', 3: 'stderr', 5: 'error' })[id],
    headersDecoded: () => undefined,
  }
  const rewriter = createClientRewriter({
    dialect,
    streamTypes: spdy ? types : undefined,
    masking: PROFILE,
    send: (b) => sent.push(b),
    onError: (e) => assert.fail(String(e)),
    clock,
  })
  assert.ok(rewriter)
  const base64 = !spdy && 'base64' in dialect && dialect.base64
  const ws = (channel: number, data: Buffer): Buffer =>
    base64
      ? encodeServerFrame(Opcode.TEXT, Buffer.from(String(channel) + data.toString('base64')))
      : encodeServerFrame(Opcode.BINARY, Buffer.concat([Buffer.from([channel]), data]))
  return {
    output(code: 'o' | 'e', data: Buffer) {
      if (spdy)
        rewriter.push(encodeFrame({ type: 'data', streamId: code === 'o' ? 1 : 3, flags: 0, data }))
      else rewriter.push(ws(code === 'o' ? 1 : 2, data))
    },
    exit() {
      if (spdy)
        rewriter.push(
          encodeFrame({ type: 'data', streamId: 5, flags: FLAG_FIN, data: Buffer.from('{}') }),
        )
      else rewriter.push(ws(3, Buffer.from('{}')))
      rewriter.end()
    },
    received(): { o: string; e: string } {
      const wire = Buffer.concat(sent)
      const text = { o: '', e: '' }
      if (spdy) {
        const p = new FrameParser()
        for (const f of p.push(wire))
          if (f.type === 'data' && (f.streamId === 1 || f.streamId === 3))
            text[f.streamId === 1 ? 'o' : 'e'] += f.data.toString('latin1')
        return text
      }
      const reader = new WebSocketFrameReader({ masked: false, maxMessageBytes: 1 << 24 })
      for (const m of reader.push(wire)) {
        const channel = base64 ? m.data[0]! - 0x30 : m.data[0]!
        const data = base64
          ? Buffer.from(m.data.subarray(1).toString('latin1'), 'base64')
          : m.data.subarray(1)
        if (channel === 1 || channel === 2)
          text[channel === 1 ? 'o' : 'e'] += data.toString('latin1')
      }
      return text
    },
  }
}
