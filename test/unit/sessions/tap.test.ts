// The session tap as the relay uses it (issue 18 item 9): SPDY header blocks are decoded when
// their frame is read, so a frame's streams are known (or refused) before it moves; stream ids
// are a client's own, odd and increasing; frames and streams the tap cannot attribute are
// refused; a client's bytes count as pending until they make a whole frame; resize lines are
// read in linear time and bounded; WebSocket port-forward data is recorded under the port
// asked for even before the kubelet's port preamble.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { constants, deflateSync } from 'node:zlib'
import type { Dialect } from '../../../src/kube/remote-command.ts'
import { createTap, TapProtocolError, type SessionObserver } from '../../../src/sessions/tap.ts'
import {
  encodeFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  HeaderCompressor,
  SPDY3_HEADER_DICTIONARY,
} from '../../../src/spdy/index.ts'
import { Opcode } from '../../../src/sessions/websocket-frames.ts'

const spdy: Dialect = { transport: 'spdy', subprotocol: 'v4.channel.k8s.io', version: 4 }
const v5: Dialect = {
  transport: 'websocket',
  subprotocol: 'v5.channel.k8s.io',
  base64: false,
  version: 5,
}
const pfws: Dialect = {
  transport: 'websocket',
  subprotocol: 'portforward.k8s.io',
  base64: false,
  version: 1,
}

function recorder(): { observer: SessionObserver; events: string[] } {
  const events: string[] = []
  const observer = new Proxy({} as SessionObserver, {
    get:
      (_t, name: string) =>
      (...args: unknown[]) =>
        events.push(
          `${name} ${args.map((a) => (Buffer.isBuffer(a) ? a.toString() : JSON.stringify(a))).join(' ')}`,
        ),
  })
  return { observer, events }
}

const syn = (id: number, block: Buffer, flags = 0): Buffer =>
  encodeFrame({
    type: 'syn_stream',
    streamId: id,
    associatedStreamId: 0,
    priority: 0,
    slot: 0,
    flags,
    headerBlock: block,
  })
const data = (id: number, text: string | Buffer, flags = 0): Buffer =>
  encodeFrame({ type: 'data', streamId: id, flags, data: Buffer.from(text) })

function maskedMessage(payload: Buffer, opcode: number = Opcode.BINARY, fin = true): Buffer {
  const mask = Buffer.from([1, 2, 3, 4])
  const len = payload.length
  const head =
    len < 126 ? Buffer.from([0, 0x80 | len]) : Buffer.from([0, 0x80 | 126, len >> 8, len & 255])
  head[0] = (fin ? 0x80 : 0) | opcode
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!))])
}

describe('SPDY tap', () => {
  test('a SYN_STREAM is decoded when read: DATA in the same chunk is attributed at once', async () => {
    const { observer, events } = recorder()
    const tap = createTap(spdy, 'exec', observer)
    const h = new HeaderCompressor()
    tap.fromClient(
      Buffer.concat([syn(1, await h.compress({ streamtype: 'stdin' })), data(1, 'typed')]),
    )
    assert.deepEqual(events, ['stdin typed'])
    assert.equal(tap.streamTypes?.streamType(1), 'stdin')
    assert.equal(tap.streamTypes?.headersDecoded(), undefined)
    h.close()
  })

  const refusals: [string, (h: HeaderCompressor) => Promise<Buffer>, RegExp][] = [
    [
      'a reused stream id',
      async (h) =>
        Buffer.concat([
          syn(1, await h.compress({ streamtype: 'stdin' })),
          syn(1, await h.compress({ streamtype: 'stdout' })),
        ]),
      /stream id 1 after 1/,
    ],
    [
      'a lower stream id',
      async (h) =>
        Buffer.concat([
          syn(3, await h.compress({ streamtype: 'stdin' })),
          syn(1, await h.compress({ streamtype: 'stdout' })),
        ]),
      /stream id 1 after 3/,
    ],
    [
      'an even (server) stream id',
      async (h) => syn(2, await h.compress({ streamtype: 'stdin' })),
      /stream id 2/,
    ],
    [
      'an unknown stream type',
      async (h) => syn(1, await h.compress({ streamtype: 'shell' })),
      /streamType 'shell'/,
    ],
    [
      'a second stdin stream',
      async (h) =>
        Buffer.concat([
          syn(1, await h.compress({ streamtype: 'stdin' })),
          syn(3, await h.compress({ streamtype: 'stdin' })),
        ]),
      /a second stdin stream/,
    ],
    ['DATA on a stream never opened', () => Promise.resolve(data(5, 'x')), /never opened/],
    [
      'DATA after the client ended the stream',
      async (h) =>
        Buffer.concat([
          syn(1, await h.compress({ streamtype: 'stdin' })),
          data(1, 'a', FLAG_FIN),
          data(1, 'b'),
        ]),
      /after the client ended it/,
    ],
    [
      'a client SYN_REPLY',
      () =>
        Promise.resolve(
          encodeFrame({ type: 'syn_reply', streamId: 1, flags: 0, headerBlock: Buffer.alloc(0) }),
        ),
      /SYN_REPLY/,
    ],
    [
      'an unknown control frame',
      () =>
        Promise.resolve(
          encodeFrame({ type: 'unknown', controlType: 77, flags: 0, payload: Buffer.alloc(0) }),
        ),
      /unknown control frame type 77/,
    ],
    [
      'a header block bomb',
      () =>
        Promise.resolve(
          syn(
            1,
            deflateSync(encodeHeaderBlock({ streamtype: 'stdin', x: 'x'.repeat(1 << 20) }), {
              dictionary: SPDY3_HEADER_DICTIONARY,
              finishFlush: constants.Z_SYNC_FLUSH,
            }),
          ),
        ),
      /exceeds the limit of 16384|inflates more than/,
    ],
    [
      'an oversized SYN_STREAM, refused at its frame header',
      () => Promise.resolve(syn(1, Buffer.alloc(100_000)).subarray(0, 8)),
      /control frame payload of 100010 bytes exceeds the limit/,
    ],
  ]
  for (const [name, frames, reason] of refusals) {
    test(`refused: ${name}`, async () => {
      const { observer, events } = recorder()
      const tap = createTap(spdy, 'exec', observer)
      const h = new HeaderCompressor()
      const bytes = await frames(h)
      assert.throws(
        () => tap.fromClient(bytes),
        (e: unknown) => e instanceof TapProtocolError && reason.test(e.message),
      )
      assert.ok(!events.some((e) => e.startsWith('stdin b')), 'DATA after the end was recorded')
      h.close()
    })
  }

  test('port-forward: streams need a valid port; data is recorded by connection and port', async () => {
    const { observer, events } = recorder()
    const tap = createTap(spdy, 'portforward', observer)
    const h = new HeaderCompressor()
    tap.fromClient(
      Buffer.concat([
        syn(1, await h.compress({ streamtype: 'error', port: '80', requestid: '0' }), FLAG_FIN),
        syn(3, await h.compress({ streamtype: 'data', port: '80', requestid: '0' })),
        data(3, 'GET /'),
      ]),
    )
    assert.deepEqual(events, ['portOpened "0" 80', 'portData "0" 80 "in" GET /'])
    assert.throws(
      () => tap.fromClient(syn(5, Buffer.alloc(0))),
      /names no valid port|streamType ''/,
    )
    h.close()
  })

  test('a client DATA frame in flight to a stream the upstream reset is still recorded', async () => {
    const { observer, events } = recorder()
    const tap = createTap(spdy, 'exec', observer)
    const h = new HeaderCompressor()
    tap.fromClient(syn(1, await h.compress({ streamtype: 'stdin' })))
    tap.fromUpstream(encodeFrame({ type: 'rst_stream', streamId: 1, status: 5 }))
    tap.fromClient(data(1, 'late'))
    assert.deepEqual(events, ['stdin late'])
    h.close()
  })

  test('pending bytes: a frame still arriving is pending; once whole it is not', async () => {
    const { observer } = recorder()
    const tap = createTap(spdy, 'exec', observer)
    const h = new HeaderCompressor()
    const frame = Buffer.concat([
      syn(1, await h.compress({ streamtype: 'stdin' })),
      data(1, 'abcdef'),
    ])
    tap.fromClient(frame.subarray(0, frame.length - 3))
    assert.equal(tap.clientPendingBytes(), data(1, 'abcdef').length - 3)
    tap.fromClient(frame.subarray(frame.length - 3))
    assert.equal(tap.clientPendingBytes(), 0)
    h.close()
  })

  test('resize: messages split anywhere are read; a line without end past 4096 bytes is refused', async () => {
    const { observer, events } = recorder()
    const tap = createTap(spdy, 'exec', observer)
    const h = new HeaderCompressor()
    tap.fromClient(syn(1, await h.compress({ streamtype: 'resize' })))
    const text = '{"Width":80,"Height":24}\n{"Width":100,"Height":30}\n'
    for (const ch of text) tap.fromClient(data(1, ch))
    assert.deepEqual(events, [
      'resize {"width":80,"height":24}',
      'resize {"width":100,"height":30}',
    ])
    assert.throws(() => {
      for (let i = 0; i < 10; i++) tap.fromClient(data(1, Buffer.alloc(1000, 0x20)))
    }, /resize message longer than 4096 bytes/)
    h.close()
  })

  test('the server opening a stream is refused (Kubernetes clients open every stream)', () => {
    const { observer } = recorder()
    const tap = createTap(spdy, 'exec', observer)
    assert.throws(() => tap.fromUpstream(syn(2, Buffer.alloc(0))), /the server opened stream 2/)
  })
})

describe('WebSocket tap', () => {
  test('client messages on channels that carry nothing to the container are refused', () => {
    const { observer, events } = recorder()
    const tap = createTap(v5, 'exec', observer)
    tap.fromClient(maskedMessage(Buffer.from('\x00in')))
    tap.fromClient(maskedMessage(Buffer.from([255, 0])))
    assert.deepEqual(events, ['stdin in', 'stdinClosed '])
    for (const channel of [1, 2, 3, 7])
      assert.throws(
        () => createTap(v5, 'exec', observer).fromClient(maskedMessage(Buffer.from([channel, 65]))),
        /carries nothing to the container/,
      )
  })

  test('pending bytes cover a fragmented message until its last fragment', () => {
    const { observer, events } = recorder()
    const tap = createTap(v5, 'exec', observer)
    const first = maskedMessage(Buffer.from('\x00par'), Opcode.BINARY, false)
    const ping = maskedMessage(Buffer.from('p'), Opcode.PING)
    const last = maskedMessage(Buffer.from('tial'), Opcode.CONTINUATION)
    tap.fromClient(first)
    tap.fromClient(ping)
    assert.equal(tap.clientPendingBytes(), first.length + ping.length)
    tap.fromClient(last.subarray(0, 3))
    assert.equal(tap.clientPendingBytes(), first.length + ping.length + 3)
    tap.fromClient(last.subarray(3))
    assert.equal(tap.clientPendingBytes(), 0)
    assert.deepEqual(events, ['stdin partial'])
  })

  test('termination after a protocol error: a Status 400 on the error channel, then close 1002', () => {
    const { observer } = recorder()
    const bytes = createTap(v5, 'exec', observer).termination('bad frame', 'x', true)
    const status = JSON.parse(bytes.subarray(3, bytes.indexOf(0x88)).toString()) as { code: number }
    assert.equal(status.code, 400)
    const close = bytes.subarray(bytes.indexOf(0x88))
    assert.equal(close.readUInt16BE(2), 1002)
  })

  test('plain port-forward: client data before the port preamble is recorded under the port asked for', () => {
    const { observer, events } = recorder()
    const tap = createTap(pfws, 'portforward', observer, new URLSearchParams('ports=8080,9090'))
    tap.fromClient(maskedMessage(Buffer.from('\x02early')))
    assert.deepEqual(events, ['portData "1" 9090 "in" early'])
    assert.throws(
      () => tap.fromClient(maskedMessage(Buffer.from('\x04x'))),
      /no port's data channel/,
    )
  })
})
