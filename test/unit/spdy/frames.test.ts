import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  encodeFrame,
  FLAG_FIN,
  FrameParser,
  SPDY3_HEADER_DICTIONARY,
  SpdyProtocolError,
  type SpdyFrame,
} from '../../../src/spdy/index.ts'

const roundTrip = (frame: SpdyFrame): SpdyFrame[] => new FrameParser().push(encodeFrame(frame))

describe('SPDY/3.1 frames', () => {
  test('the header dictionary matches the spec byte for byte (length and SHA-256)', () => {
    assert.equal(SPDY3_HEADER_DICTIONARY.length, 1423)
    assert.equal(
      createHash('sha256').update(SPDY3_HEADER_DICTIONARY).digest('hex'),
      '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02',
    )
  })

  const samples: SpdyFrame[] = [
    { type: 'data', streamId: 7, flags: FLAG_FIN, data: Buffer.from('hello') },
    { type: 'data', streamId: 0x7fffffff, flags: 0, data: Buffer.alloc(0) },
    {
      type: 'syn_stream',
      streamId: 1,
      associatedStreamId: 0,
      priority: 3,
      slot: 0,
      flags: FLAG_FIN,
      headerBlock: Buffer.from([1, 2, 3]),
    },
    { type: 'syn_reply', streamId: 2, flags: 0, headerBlock: Buffer.from([9, 9]) },
    { type: 'headers', streamId: 5, flags: FLAG_FIN, headerBlock: Buffer.from([4]) },
    { type: 'rst_stream', streamId: 3, status: 5 },
    {
      type: 'settings',
      flags: 1,
      entries: [
        { flags: 1, id: 7, value: 65536 },
        { flags: 0, id: 4, value: 100 },
      ],
    },
    { type: 'ping', id: 0xfffffffe },
    { type: 'goaway', lastGoodStreamId: 9, status: 1 },
    { type: 'window_update', streamId: 0, delta: 1024 },
    { type: 'window_update', streamId: 3, delta: 0x7fffffff },
    { type: 'unknown', controlType: 0x42, flags: 0, payload: Buffer.from('future') },
  ]
  for (const frame of samples) {
    test(`${frame.type} round-trips through encode and parse`, () => {
      assert.deepEqual(roundTrip(frame), [frame])
    })
  }

  test('the wire layout follows the spec: control bit, version 3, type, flags, 24-bit length', () => {
    const bytes = encodeFrame({ type: 'ping', id: 1 })
    assert.deepEqual([...bytes], [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1])
    const data = encodeFrame({
      type: 'data',
      streamId: 1,
      flags: FLAG_FIN,
      data: Buffer.from('ab'),
    })
    assert.deepEqual([...data], [0, 0, 0, 1, 0x01, 0, 0, 2, 0x61, 0x62])
  })

  test('frames split at every byte boundary reassemble identically', () => {
    const all = Buffer.concat(samples.map(encodeFrame))
    const parser = new FrameParser()
    const got: SpdyFrame[] = []
    for (let i = 0; i < all.length; i++) got.push(...parser.push(all.subarray(i, i + 1)))
    assert.deepEqual(got, samples)
    parser.end()
  })

  test('property: any sequence of DATA frames survives any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.integer({ min: 1, max: 0x7fffffff }),
            data: fc.uint8Array({ maxLength: 300 }),
            fin: fc.boolean(),
          }),
          { maxLength: 20 },
        ),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        (frames, cuts) => {
          const expected: SpdyFrame[] = frames.map((f) => ({
            type: 'data',
            streamId: f.id,
            flags: f.fin ? FLAG_FIN : 0,
            data: Buffer.from(f.data),
          }))
          const all = Buffer.concat(expected.map(encodeFrame))
          const parser = new FrameParser()
          const got: SpdyFrame[] = []
          let off = 0
          let i = 0
          while (off < all.length) {
            const n = cuts[i++ % cuts.length]!
            got.push(...parser.push(all.subarray(off, off + n)))
            off += n
          }
          assert.deepEqual(got, expected)
        },
      ),
    )
  })

  describe('malformed input is rejected with a clear error, never a crash', () => {
    const control = (type: number, payload: number[], version = 3, flags = 0): Buffer =>
      Buffer.from([
        0x80 | (version >> 8),
        version & 0xff,
        type >> 8,
        type & 0xff,
        flags,
        (payload.length >> 16) & 0xff,
        (payload.length >> 8) & 0xff,
        payload.length & 0xff,
        ...payload,
      ])
    const cases: [string, Buffer, RegExp][] = [
      ['wrong version', control(6, [0, 0, 0, 1], 2), /unsupported SPDY version 2/],
      [
        'SYN_STREAM shorter than its fixed part',
        control(1, [0, 0, 0, 1]),
        /SYN_STREAM frame too short/,
      ],
      ['SYN_STREAM on stream 0', control(1, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /stream id 0/],
      ['SYN_REPLY without a stream id', control(2, [0, 0]), /SYN_REPLY frame too short/],
      [
        'RST_STREAM with a bad length',
        control(3, [0, 0, 0, 1]),
        /RST_STREAM frame has length 4, expected 8/,
      ],
      ['RST_STREAM with status 0', control(3, [0, 0, 0, 1, 0, 0, 0, 0]), /status 0/],
      ['PING with a bad length', control(6, [0, 0, 1]), /PING frame has length 3/],
      ['GOAWAY with a bad length', control(7, [0, 0, 0, 0]), /GOAWAY frame has length 4/],
      ['WINDOW_UPDATE with delta 0', control(9, [0, 0, 0, 1, 0, 0, 0, 0]), /delta 0/],
      [
        'SETTINGS whose count disagrees with its length',
        control(4, [0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1]),
        /SETTINGS \(5 entries\)/,
      ],
      [
        'DATA on stream 0',
        Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x41]),
        /DATA frame with stream id 0/,
      ],
    ]
    for (const [name, bytes, message] of cases) {
      test(name, () => {
        const parser = new FrameParser()
        assert.throws(
          () => parser.push(bytes),
          (err: unknown) => err instanceof SpdyProtocolError && message.test(err.message),
        )
        // A failed parser stays failed: the connection cannot be resynchronised.
        assert.throws(() => parser.push(encodeFrame({ type: 'ping', id: 2 })), SpdyProtocolError)
      })
    }

    test('a frame longer than the configured limit is refused before it is buffered', () => {
      const parser = new FrameParser({ maxFramePayload: 1024 })
      const header = Buffer.from([0, 0, 0, 1, 0, 0x00, 0x08, 0x00]) // DATA, 2048 bytes announced
      assert.throws(() => parser.push(header), /2048 bytes exceeds the limit of 1024/)
      assert.equal(parser.pendingBytes, 8)
    })

    test('a connection that ends inside a frame is reported as truncated', () => {
      const parser = new FrameParser()
      const bytes = encodeFrame({
        type: 'data',
        streamId: 1,
        flags: 0,
        data: Buffer.from('abcdef'),
      })
      assert.deepEqual(parser.push(bytes.subarray(0, 10)), [])
      assert.throws(() => parser.end(), /connection ended inside a frame \(10 bytes/)
    })

    test('property: random bytes either parse or throw SpdyProtocolError, nothing else', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
          const parser = new FrameParser()
          try {
            parser.push(Buffer.from(bytes))
          } catch (err) {
            assert.ok(err instanceof SpdyProtocolError, String(err))
          }
        }),
      )
    })
  })

  test('encoding refuses what cannot be expressed on the wire', () => {
    assert.throws(
      () => encodeFrame({ type: 'data', streamId: 0, flags: 0, data: Buffer.alloc(0) }),
      /invalid stream id 0/,
    )
    assert.throws(
      () => encodeFrame({ type: 'window_update', streamId: 1, delta: 0 }),
      /invalid WINDOW_UPDATE delta/,
    )
    assert.throws(
      () => encodeFrame({ type: 'data', streamId: 1, flags: 0, data: Buffer.alloc(0x1000000) }),
      /24-bit length/,
    )
  })
})
