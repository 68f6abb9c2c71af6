import assert from 'node:assert/strict'
import { deflateSync } from 'node:zlib'
import { describe, test } from 'node:test'
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCompressor,
  HeaderDecompressor,
  SPDY3_HEADER_DICTIONARY,
  SpdyProtocolError,
} from '../../../src/spdy/index.ts'

describe('SPDY/3 header blocks', () => {
  test('encode/decode keeps names, multiple values (NUL-joined) and order', () => {
    const block = encodeHeaderBlock({ streamtype: 'stdout', port: ['8080'], 'x-multi': ['a', 'b'] })
    assert.deepEqual(
      [...decodeHeaderBlock(block)],
      [
        ['streamtype', ['stdout']],
        ['port', ['8080']],
        ['x-multi', ['a', 'b']],
      ],
    )
  })

  test('uppercase, empty and duplicate names are refused in both directions', () => {
    assert.throws(() => encodeHeaderBlock({ StreamType: 'x' }), /lowercase/)
    assert.throws(() => encodeHeaderBlock(new Map([['', ['x']]])), /lowercase/)
    const dup = Buffer.concat([
      encodeHeaderBlock({ a: '1' }).subarray(0, 4),
      encodeHeaderBlock({ a: '1' }).subarray(4),
      encodeHeaderBlock({ a: '2' }).subarray(4),
    ])
    dup.writeUInt32BE(2, 0)
    assert.throws(() => decodeHeaderBlock(dup), /duplicate header name a/)
  })

  test('truncated and lying header blocks are refused', () => {
    const good = encodeHeaderBlock({ streamtype: 'error' })
    assert.throws(() => decodeHeaderBlock(good.subarray(0, good.length - 2)), /truncated/)
    const lying = Buffer.from(good)
    lying.writeUInt32BE(1_000_000, 0)
    assert.throws(() => decodeHeaderBlock(lying, 2_000_000), /claims 1000000 headers/)
    assert.throws(() => decodeHeaderBlock(lying), /1000000 headers, more than the limit of 100/)
    assert.throws(
      () => decodeHeaderBlock(Buffer.concat([good, Buffer.from([0])])),
      /trailing bytes/,
    )
  })

  test('one compression context spans many frames, and each block decodes in order', async () => {
    const sender = new HeaderCompressor()
    const receiver = new HeaderDecompressor()
    const blocks: Buffer[] = []
    for (let i = 0; i < 200; i++) {
      blocks.push(
        await sender.compress({
          streamtype: i % 2 ? 'data' : 'error',
          port: String(8000 + (i % 3)),
          requestid: String(i),
        }),
      )
    }
    // Later blocks reuse the shared window: they are much smaller than the first.
    assert.ok(
      blocks[199]!.length < blocks[0]!.length,
      `${blocks[199]!.length} < ${blocks[0]!.length}`,
    )
    for (let i = 0; i < 200; i++) {
      const h = receiver.decompress(blocks[i]!)
      assert.equal(h.get('requestid')?.[0], String(i))
    }
    // Decoding out of order must fail: the context is stateful, exactly as SPDY requires.
    const fresh = new HeaderDecompressor()
    assert.throws(() => fresh.decompress(blocks[5]!), SpdyProtocolError)
    sender.close()
    receiver.close()
  })

  test('concurrent compressions are serialised in call order', async () => {
    const sender = new HeaderCompressor()
    const receiver = new HeaderDecompressor()
    const blocks = await Promise.all(
      Array.from({ length: 50 }, (_, i) => sender.compress({ n: String(i) })),
    )
    const decoded = blocks.map((b) => receiver.decompress(b))
    assert.deepEqual(
      decoded.map((h) => h.get('n')?.[0]),
      Array.from({ length: 50 }, (_, i) => String(i)),
    )
  })

  test('bad zlib data is rejected and poisons the context for good', async () => {
    const receiver = new HeaderDecompressor()
    assert.throws(
      () => receiver.decompress(Buffer.from('not zlib at all')),
      /header decompression failed/,
    )
    const good = await new HeaderCompressor().compress({ a: 'b' })
    assert.throws(() => receiver.decompress(good), SpdyProtocolError)
  })

  test('a header bomb is cut off at the configured limit, after one chunk of output', () => {
    const raw = encodeHeaderBlock({ big: 'x'.repeat(64 * 1024 * 1024) })
    const bomb = deflateSync(raw, { dictionary: SPDY3_HEADER_DICTIONARY })
    assert.ok(bomb.length < 100_000)
    const receiver = new HeaderDecompressor({ maxHeaderBlockBytes: 64 * 1024, maxRatio: 1e9 })
    assert.throws(() => receiver.decompress(bomb), /exceeds the limit of 65536 bytes/)
    const small = deflateSync(encodeHeaderBlock({ big: 'x'.repeat(1024 * 1024) }), {
      dictionary: SPDY3_HEADER_DICTIONARY,
    })
    assert.throws(() => new HeaderDecompressor().decompress(small), /inflates more than 100 times/)
  })

  test('decompression is synchronous: the headers are known when the call returns', async () => {
    const block = await new HeaderCompressor().compress({ streamtype: 'stdin' })
    const h = new HeaderDecompressor().decompress(block)
    assert.deepEqual([...h], [['streamtype', ['stdin']]])
  })

  test('more headers than the limit, or a compressed block over the size limit, are refused', async () => {
    const many: Record<string, string> = {}
    for (let i = 0; i < 101; i++) many[`h${i}`] = 'v'
    const block = await new HeaderCompressor().compress(many)
    assert.throws(
      () => new HeaderDecompressor().decompress(block),
      /101 headers, more than the limit of 100/,
    )
    const big = Buffer.alloc(20_000, 1)
    assert.throws(
      () => new HeaderDecompressor({ maxHeaderBlockBytes: 16 * 1024 }).decompress(big),
      /20000 compressed bytes exceeds the limit of 16384/,
    )
  })
})
