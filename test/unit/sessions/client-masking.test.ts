// Exec and attach output masked on its way to the client: in every WebSocket dialect (base64
// ones decoded and re-encoded, fragmented messages joined) and in SPDY (DATA of stdout and stderr
// streams re-framed with FIN kept, control frames byte for byte). The output is decoded with the
// project's own frame readers: the framing stays valid, the stdout and stderr text equals masking
// the whole text at once whatever the frame and chunk boundaries, and order is kept.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import * as wsModule from 'ws'
import { detectorSet } from '../../../src/masking/detectors.ts'
import { maskText } from '../../../src/masking/text.ts'
import { createClientRewriter, type ClientRewriter } from '../../../src/sessions/client-masking.ts'
import { dialectOf, type Dialect } from '../../../src/kube/remote-command.ts'
import { createTap, type SessionObserver, type SpdyStreamTypes } from '../../../src/sessions/tap.ts'
import { Opcode, WebSocketFrameReader } from '../../../src/sessions/websocket-frames.ts'
import {
  encodeFrame,
  FLAG_FIN,
  FrameParser,
  HeaderCompressor,
  type SpdyFrame,
} from '../../../src/spdy/index.ts'
import { ManualClock } from '../support/manual-clock.ts'

const DETECTORS = detectorSet()
const CARD = '4111 1111 1111 1111'
const SSN = '123-45-6789'
const AWS = 'AKIAIOSFODNN7EXAMPLE'
const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq8\nAoGBAKq1\n-----END RSA PRIVATE KEY-----'
const PLANTED = [CARD, SSN, AWS, 'MIIEowIBAAKCAQEA7bq8']
const STDOUT = `card ${CARD} ok\nssn ${SSN}\nkey ${AWS}\n${PEM}\nprompt # `
const STDERR = `warning: ${AWS} leaked\nssn=${SSN}`

const Sender = (
  wsModule as unknown as {
    Sender: {
      frame(
        data: Buffer,
        o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
      ): Buffer[]
    }
  }
).Sender

/** A server (unmasked) frame, as the ws library writes it. */
function wsFrame(data: Buffer, opcode: number, fin = true): Buffer {
  return Buffer.concat(
    Sender.frame(Buffer.from(data), { fin, opcode, mask: false, readOnly: false, rsv1: false }),
  )
}

function dialect(subprotocol: string): Extract<Dialect, { transport: 'websocket' }> {
  const d = dialectOf(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: ${subprotocol}\r\n`,
  )
  assert.ok('transport' in d && d.transport === 'websocket')
  return d
}

/** One channel message in the dialect's encoding. */
function message(d: Extract<Dialect, { transport: 'websocket' }>, channel: number, data: Buffer) {
  return d.base64
    ? Buffer.from(String(channel) + data.toString('base64'), 'latin1')
    : Buffer.concat([Buffer.from([channel]), data])
}

function rewriterFor(d: Dialect, streamTypes?: SpdyStreamTypes, clock = new ManualClock()) {
  const sent: Buffer[] = []
  const rewriter = createClientRewriter({
    dialect: d,
    streamTypes,
    masking: { detectors: DETECTORS, replacement: { kind: 'placeholder' } },
    send: (b) => sent.push(b),
    onError: (e) => assert.fail(String(e)),
    clock,
  })
  assert.ok(rewriter)
  return { rewriter, sent }
}

/** What the client reads: messages as [channel, data], control frames as [opcode name, data]. */
function readClient(d: Extract<Dialect, { transport: 'websocket' }>, wire: Buffer) {
  const reader = new WebSocketFrameReader({ masked: false, maxMessageBytes: 1 << 24 })
  return reader.push(wire).map((m) => {
    if (m.opcode >= 0x8) return { control: m.opcode, data: m.data }
    const channel = d.base64 ? m.data[0]! - 0x30 : m.data[0]!
    const data = d.base64
      ? Buffer.from(m.data.subarray(1).toString('latin1'), 'base64')
      : m.data.subarray(1)
    return { channel, data, opcode: m.opcode }
  })
}

function textOf(msgs: ReturnType<typeof readClient>, channel: number): string {
  return msgs
    .filter((m) => 'channel' in m && m.channel === channel)
    .map((m) => m.data.toString('latin1'))
    .join('')
}

function feed(r: ClientRewriter, wire: Buffer, cuts: number[]): void {
  let at = 0
  for (const c of [...cuts.filter((c) => c > 0 && c < wire.length)].sort((a, b) => a - b)) {
    r.push(wire.subarray(at, c))
    at = c
  }
  r.push(wire.subarray(at))
}

const whole = (t: string): string => maskText(t).text
const placeholder = (t: string): boolean => PLANTED.every((p) => !t.includes(p))
const DIALECTS = [
  'channel.k8s.io',
  'base64.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'v5.channel.k8s.io',
]

describe('client masking: WebSocket dialects', () => {
  for (const sub of DIALECTS) {
    test(`${sub}: stdout and stderr masked, error channel last, framing valid`, () => {
      const d = dialect(sub)
      const opcode = d.base64 ? Opcode.TEXT : Opcode.BINARY
      const status = Buffer.from('{"kind":"Status","status":"Success"}')
      const pieces: Buffer[] = [
        // v1 servers open each channel with an empty message: it passes as it is
        wsFrame(message(d, 1, Buffer.alloc(0)), opcode),
      ]
      for (let i = 0; i < STDOUT.length; i += 7)
        pieces.push(wsFrame(message(d, 1, Buffer.from(STDOUT.slice(i, i + 7), 'latin1')), opcode))
      for (let i = 0; i < STDERR.length; i += 5)
        pieces.push(wsFrame(message(d, 2, Buffer.from(STDERR.slice(i, i + 5), 'latin1')), opcode))
      pieces.push(wsFrame(message(d, 3, status), opcode))
      pieces.push(wsFrame(Buffer.from([0x03, 0xe8]), Opcode.CLOSE))
      const wire = Buffer.concat(pieces)
      for (const step of [1, 3, 64, wire.length]) {
        const { rewriter, sent } = rewriterFor(d)
        for (let i = 0; i < wire.length; i += step) rewriter.push(wire.subarray(i, i + step))
        rewriter.end()
        const out = readClient(d, Buffer.concat(sent))
        assert.equal(textOf(out, 1), whole(STDOUT))
        assert.equal(textOf(out, 2), whole(STDERR))
        assert.ok(placeholder(textOf(out, 1) + textOf(out, 2)))
        assert.match(textOf(out, 1), /\[MASKED:card\].*\[MASKED:ssn\].*\[MASKED:aws-access-key\]/s)
        // the exit status comes after every byte of output, then the close
        const last = out.slice(-2)
        assert.deepEqual(last[0], { channel: 3, data: status, opcode })
        assert.equal((last[1] as { control: number }).control, Opcode.CLOSE)
        assert.equal(rewriter.masked, 6) // card, ssn, aws, key; aws and ssn on stderr
      }
    })
  }

  test('fragmented messages are joined and masked; a ping between fragments passes first', () => {
    const d = dialect('v5.channel.k8s.io')
    const wire = Buffer.concat([
      wsFrame(Buffer.from(`\x01card 4111 1111`), Opcode.BINARY, false),
      wsFrame(Buffer.from('hi'), Opcode.PING),
      wsFrame(Buffer.from(` 1111 1111\n`), Opcode.CONTINUATION, true),
      wsFrame(Buffer.from([255, 1]), Opcode.BINARY),
    ])
    const { rewriter, sent } = rewriterFor(d)
    rewriter.push(wire)
    const out = readClient(d, Buffer.concat(sent))
    assert.deepEqual(out[0], { control: Opcode.PING, data: Buffer.from('hi') })
    assert.equal(textOf(out, 1), 'card [MASKED:card]\n')
    assert.deepEqual(out.at(-1), { channel: 255, data: Buffer.from([1]), opcode: Opcode.BINARY })
  })

  test('held-back text goes out before a v5 close of its channel, an error Status and a CLOSE', () => {
    const d = dialect('v5.channel.k8s.io')
    for (const [name, after, channel] of [
      ['v5 close', wsFrame(Buffer.from([255, 2]), Opcode.BINARY), 255],
      ['error', wsFrame(Buffer.from('\x03{}'), Opcode.BINARY), 3],
      ['CLOSE', wsFrame(Buffer.from([0x03, 0xe8]), Opcode.CLOSE), undefined],
    ] as const) {
      const { rewriter, sent } = rewriterFor(d)
      rewriter.push(wsFrame(Buffer.from(`\x02ssn ${SSN}`), Opcode.BINARY))
      // the text before the value at once; the value waits for what follows it
      assert.equal(textOf(readClient(d, Buffer.concat(sent)), 2), 'ssn ', name)
      rewriter.push(after)
      const out = readClient(d, Buffer.concat(sent))
      assert.equal(textOf(out, 2), 'ssn [MASKED:ssn]', name)
      const last = out.at(-1)!
      if (channel === undefined) assert.ok('control' in last, name)
      else assert.equal('channel' in last && last.channel, channel, name)
    }
  })

  test('a prompt goes out at once; a value under way is masked when its hold bound runs out', () => {
    const d = dialect('v4.channel.k8s.io')
    const clock = new ManualClock()
    const { rewriter, sent } = rewriterFor(d, undefined, clock)
    rewriter.push(wsFrame(Buffer.from(`\x01# `), Opcode.BINARY))
    assert.equal(textOf(readClient(d, Buffer.concat(sent)), 1), '# ')
    rewriter.push(wsFrame(Buffer.from(`\x01card 41111111`), Opcode.BINARY))
    clock.advance(999)
    assert.equal(textOf(readClient(d, Buffer.concat(sent)), 1), '# card ')
    clock.advance(1)
    assert.equal(textOf(readClient(d, Buffer.concat(sent)), 1), '# card [MASKED:card]')
    // what continues the value is dropped into its placeholder; the rest goes on
    rewriter.push(wsFrame(Buffer.from(`\x0111111111 ok\n`), Opcode.BINARY))
    assert.equal(textOf(readClient(d, Buffer.concat(sent)), 1), '# card [MASKED:card] ok\n')
    rewriter.end()
    assert.equal(clock.pending, 0)
  })

  test('a card number typed at a terminal: the screen shows the placeholder, never a digit', () => {
    const d = dialect('v5.channel.k8s.io')
    const clock = new ManualClock()
    const { rewriter, sent } = rewriterFor(d, undefined, clock)
    const screen = () => textOf(readClient(d, Buffer.concat(sent)), 1)
    const shown: string[] = []
    // the terminal echoes each key; a person types one every 150 ms
    for (const key of '# ls -l\r\n# echo 4111111111111111\r\n') {
      rewriter.push(wsFrame(Buffer.from(`\x01${key}`), Opcode.BINARY))
      shown.push(screen())
      clock.advance(150)
    }
    // text that cannot start a value shows as it is typed
    assert.equal(shown[4], '# ls ')
    assert.ok(
      shown.every((s) => !/\d/.test(s.replace('[MASKED:card]', ''))),
      shown.join('|'),
    )
    // the digits show nothing for a second (the first arrives one key after the space), then
    // the placeholder, then nothing until Enter
    const space = shown.findIndex((s) => s.endsWith('# echo '))
    assert.equal(shown[space + 7], '# ls -l\r\n# echo ')
    assert.equal(shown[space + 8], '# ls -l\r\n# echo [MASKED:card]')
    assert.equal(shown[space + 16], '# ls -l\r\n# echo [MASKED:card]')
    assert.equal(screen(), '# ls -l\r\n# echo [MASKED:card]\r\n')
    rewriter.end()
  })

  test('a value split across two frames at every byte offset is caught', () => {
    for (const sub of ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io']) {
      const d = dialect(sub)
      const opcode = d.base64 ? Opcode.TEXT : Opcode.BINARY
      const text = `a ${CARD} b ${AWS} c ${SSN}\n${PEM}\n`
      for (let cut = 1; cut < text.length; cut++) {
        const wire = Buffer.concat([
          wsFrame(message(d, 1, Buffer.from(text.slice(0, cut))), opcode),
          wsFrame(message(d, 1, Buffer.from(text.slice(cut))), opcode),
        ])
        const { rewriter, sent } = rewriterFor(d)
        rewriter.push(wire)
        rewriter.end()
        assert.equal(textOf(readClient(d, Buffer.concat(sent)), 1), whole(text), `cut ${cut}`)
      }
    }
  })

  test('property: any text cut into any frames and chunks comes out as whole-text masking', () => {
    const secret = fc.constantFrom(CARD, SSN, AWS, PEM, 'ghp_16C7e42F292c6912E7710c838347Ae178B4a')
    const filler = fc.stringMatching(/^[a-z .:=\n0-9-]{0,40}$/)
    fc.assert(
      fc.property(
        fc.array(fc.oneof(filler, secret), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.constantFrom(...DIALECTS),
        (parts, frameCuts, chunkCuts, sub) => {
          const d = dialect(sub)
          const opcode = d.base64 ? Opcode.TEXT : Opcode.BINARY
          // joined with spaces: a value glued to the END line of a key is masked by the stream
          // masker (it starts a new segment) but not by whole-text masking (lookbehind on '-')
          const text = parts.join(' ')
          const cuts = [...new Set(frameCuts.map((c) => c % (text.length + 1)))].sort(
            (a, b) => a - b,
          )
          const frames: Buffer[] = []
          let at = 0
          for (const c of [...cuts, text.length]) {
            if (c > at) frames.push(wsFrame(message(d, 1, Buffer.from(text.slice(at, c))), opcode))
            at = Math.max(at, c)
          }
          frames.push(wsFrame(message(d, 3, Buffer.from('{}')), opcode))
          const wire = Buffer.concat(frames)
          const { rewriter, sent } = rewriterFor(d)
          feed(
            rewriter,
            wire,
            chunkCuts.map((c) => c % (wire.length + 1)),
          )
          const out = readClient(d, Buffer.concat(sent))
          assert.equal(textOf(out, 1), whole(text))
          assert.equal((out.at(-1) as { channel: number }).channel, 3)
        },
      ),
      { numRuns: 300 },
    )
  })
})

/** SPDY frames the client reads back. */
function readSpdy(wire: Buffer): SpdyFrame[] {
  const p = new FrameParser()
  const frames = p.push(wire)
  p.end()
  return frames
}

const stdoutText = (frames: SpdyFrame[], id: number): string =>
  frames
    .filter(
      (f): f is Extract<SpdyFrame, { type: 'data' }> => f.type === 'data' && f.streamId === id,
    )
    .map((f) => f.data.toString('latin1'))
    .join('')

describe('client masking: SPDY', () => {
  const spdy: Dialect = { transport: 'spdy', subprotocol: 'v4.channel.k8s.io', version: 4 }
  const types = (map: Record<number, string>): SpdyStreamTypes => ({
    streamType: (id) => map[id],
    headersDecoded: () => undefined,
  })

  test('stdout and stderr DATA masked, FIN kept on the last frame, control frames byte for byte', () => {
    const ping = encodeFrame({ type: 'ping', id: 7 })
    const windowUpdate = encodeFrame({ type: 'window_update', streamId: 3, delta: 1000 })
    const reply = encodeFrame({
      type: 'syn_reply',
      streamId: 3,
      flags: 0,
      headerBlock: Buffer.from([1, 2, 3]),
    })
    const data = (streamId: number, text: string, flags = 0): Buffer =>
      encodeFrame({ type: 'data', streamId, flags, data: Buffer.from(text, 'latin1') })
    const wire = Buffer.concat([
      reply,
      data(3, STDOUT.slice(0, 20)),
      ping,
      data(3, STDOUT.slice(20, 33)),
      windowUpdate,
      data(5, STDERR),
      data(3, STDOUT.slice(33), FLAG_FIN),
      data(7, '{"status":"Success"}', FLAG_FIN),
    ])
    for (const step of [1, 5, wire.length]) {
      const { rewriter, sent } = rewriterFor(spdy, types({ 3: 'stdout', 5: 'stderr', 7: 'error' }))
      for (let i = 0; i < wire.length; i += step) rewriter.push(wire.subarray(i, i + step))
      rewriter.end()
      const out = Buffer.concat(sent)
      const frames = readSpdy(out)
      assert.equal(stdoutText(frames, 3), whole(STDOUT))
      assert.equal(stdoutText(frames, 5), whole(STDERR))
      // the control frames are there, unchanged, in their place relative to each other
      assert.ok(out.includes(reply) && out.includes(ping) && out.includes(windowUpdate))
      assert.ok(out.indexOf(reply) < out.indexOf(ping))
      assert.ok(out.indexOf(ping) < out.indexOf(windowUpdate))
      const stdoutFrames = frames.filter(
        (f): f is Extract<SpdyFrame, { type: 'data' }> => f.type === 'data' && f.streamId === 3,
      )
      assert.equal(stdoutFrames.at(-1)!.flags, FLAG_FIN)
      assert.equal(stdoutFrames.filter((f) => f.flags & FLAG_FIN).length, 1)
      // stderr's held-back tail goes out before the exit status, which is last and unchanged
      const last = frames.at(-1)!
      assert.ok(last.type === 'data' && last.streamId === 7)
      assert.equal(last.data.toString(), '{"status":"Success"}')
      const errorAt = frames.indexOf(last)
      assert.ok(frames.slice(0, errorAt).some((f) => f.type === 'data' && f.streamId === 5))
    }
  })

  test('a value split across DATA frames at every byte offset is caught', () => {
    const text = `x ${CARD} y ${SSN} z ${AWS}\n${PEM}\n`
    for (let cut = 1; cut < text.length; cut++) {
      const { rewriter, sent } = rewriterFor(spdy, types({ 1: 'stdout' }))
      rewriter.push(
        Buffer.concat([
          encodeFrame({
            type: 'data',
            streamId: 1,
            flags: 0,
            data: Buffer.from(text.slice(0, cut)),
          }),
          encodeFrame({
            type: 'data',
            streamId: 1,
            flags: FLAG_FIN,
            data: Buffer.from(text.slice(cut)),
          }),
        ]),
      )
      assert.equal(stdoutText(readSpdy(Buffer.concat(sent)), 1), whole(text), `cut ${cut}`)
    }
  })

  test('stdin and resize streams pass byte for byte; a stream the tap cannot name is masked', () => {
    const { rewriter, sent } = rewriterFor(spdy, types({ 1: 'stdin', 9: 'resize' }))
    const known = Buffer.concat([
      encodeFrame({ type: 'data', streamId: 1, flags: 0, data: Buffer.from(CARD) }),
      encodeFrame({ type: 'data', streamId: 9, flags: 0, data: Buffer.from(CARD) }),
    ])
    rewriter.push(known)
    rewriter.push(
      encodeFrame({ type: 'data', streamId: 11, flags: FLAG_FIN, data: Buffer.from(CARD) }),
    )
    const out = Buffer.concat(sent)
    assert.deepEqual(out.subarray(0, known.length), known)
    assert.equal(stdoutText(readSpdy(out.subarray(known.length)), 11), '[MASKED:card]')
  })

  test('with the real tap: the SYN_STREAM is decoded as it is read, so DATA after it is masked at once', async () => {
    const observer = new Proxy({}, { get: () => () => undefined }) as SessionObserver
    const tap = createTap(spdy, 'exec', observer)
    assert.ok(tap.streamTypes)
    const compressor = new HeaderCompressor()
    const syn = encodeFrame({
      type: 'syn_stream',
      streamId: 1,
      associatedStreamId: 0,
      priority: 0,
      slot: 0,
      flags: 0,
      headerBlock: await compressor.compress({ streamtype: 'stdout' }),
    })
    const { rewriter, sent } = rewriterFor(spdy, tap.streamTypes)
    const data = encodeFrame({
      type: 'data',
      streamId: 1,
      flags: FLAG_FIN,
      data: Buffer.from(`card ${CARD}\n`),
    })
    tap.fromClient(syn)
    tap.fromUpstream(data)
    rewriter.push(data)
    assert.equal(rewriter.waiting, undefined, 'the tap decodes header blocks synchronously')
    assert.equal(stdoutText(readSpdy(Buffer.concat(sent)), 1), 'card [MASKED:card]\n')
    compressor.close()
    tap.close()
  })
})
