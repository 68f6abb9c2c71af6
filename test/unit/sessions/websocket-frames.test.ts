// The tap's WebSocket reader against frames made by the ws library (the framing a real client
// and server produce), split at every byte, fragmented, masked, with control frames between
// fragments, and against malformed frames.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import * as wsModule from 'ws'
import {
  Opcode,
  WebSocketFrameReader,
  WebSocketProtocolError,
  encodeServerFrame,
} from '../../../src/sessions/websocket-frames.ts'

/** ws's frame writer (exported at run time, not in @types/ws). */
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

function frame(data: Buffer, opts: { opcode: number; fin?: boolean; mask: boolean }): Buffer {
  return Buffer.concat(
    Sender.frame(Buffer.from(data), {
      fin: opts.fin ?? true,
      opcode: opts.opcode,
      mask: opts.mask,
      readOnly: false,
      rsv1: false,
    }),
  )
}

describe('WebSocket frame reader', () => {
  test('client frames: masked, any length encoding, split at every byte', () => {
    const payloads = [
      Buffer.alloc(0),
      Buffer.from('\x00hello'),
      Buffer.alloc(300, 7),
      Buffer.alloc(70_000, 9),
    ]
    const wire = Buffer.concat(payloads.map((p) => frame(p, { opcode: Opcode.BINARY, mask: true })))
    for (const step of [1, 3, 1000, wire.length]) {
      const r = new WebSocketFrameReader({ masked: true, maxMessageBytes: 1 << 20 })
      const got: Buffer[] = []
      for (let i = 0; i < wire.length; i += step) {
        for (const m of r.push(wire.subarray(i, i + step))) got.push(m.data)
      }
      assert.deepEqual(got, payloads)
      assert.equal(r.bytesToFrameEnd, 0)
    }
  })

  test('fragmented messages with a ping in between; bytesToFrameEnd counts down', () => {
    const wire = Buffer.concat([
      frame(Buffer.from('\x01abc'), { opcode: Opcode.BINARY, fin: false, mask: false }),
      frame(Buffer.from('ping'), { opcode: Opcode.PING, mask: false }),
      frame(Buffer.from('def'), { opcode: Opcode.CONTINUATION, mask: false }),
    ])
    const r = new WebSocketFrameReader({ masked: false, maxMessageBytes: 100 })
    const first = r.push(wire.subarray(0, 3))
    assert.deepEqual(first, [])
    assert.equal(r.bytesToFrameEnd, 3) // 2-byte header + 4 payload bytes, 3 received
    const rest = r.push(wire.subarray(3))
    assert.deepEqual(
      rest.map((m) => [m.opcode, m.data.toString('latin1')]),
      [
        [Opcode.PING, 'ping'],
        [Opcode.BINARY, '\x01abcdef'],
      ],
    )
    assert.equal(r.bytesToFrameEnd, 0)
  })

  test('malformed frames are errors, never exceptions of another kind or hangs', () => {
    const cases: [string, Buffer, boolean][] = [
      ['unmasked client frame', frame(Buffer.from('x'), { opcode: 2, mask: false }), true],
      ['masked server frame', frame(Buffer.from('x'), { opcode: 2, mask: true }), false],
      ['reserved bits', Buffer.from([0xc2, 0x01, 0x41]), false],
      ['unknown opcode', Buffer.from([0x83, 0x00]), false],
      [
        'long control frame',
        Buffer.concat([Buffer.from([0x89, 126, 0, 200]), Buffer.alloc(200)]),
        false,
      ],
      ['fragmented control frame', Buffer.from([0x09, 0x00]), false],
      ['continuation without a message', Buffer.from([0x80, 0x00]), false],
      [
        'message over the limit',
        Buffer.concat([Buffer.from([0x82, 126, 0x01, 0x00]), Buffer.alloc(256)]),
        false,
      ],
      ['length beyond 4 GiB', Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), false],
    ]
    for (const [name, bytes, masked] of cases) {
      const r = new WebSocketFrameReader({ masked, maxMessageBytes: 100 })
      assert.throws(() => r.push(bytes), WebSocketProtocolError, name)
      // and it stays failed
      assert.throws(() => r.push(Buffer.from([0])), WebSocketProtocolError, name)
    }
  })

  test('frames Gatehouse sends read back as what was meant', () => {
    for (const len of [0, 125, 126, 65535, 65536]) {
      const payload = Buffer.alloc(len, 5)
      const r = new WebSocketFrameReader({ masked: false, maxMessageBytes: 1 << 20 })
      const [m] = r.push(encodeServerFrame(Opcode.BINARY, payload))
      assert.equal(m!.data.length, len)
    }
  })
})
