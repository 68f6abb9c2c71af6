// Issue 18 items 9 and 13 (sessions), through Gatehouse against the real API server and the fake
// kubelet: what a client sends with its upgrade request is read and recorded before it moves;
// SPDY header blocks are decoded, within limits, before their frame is forwarded, so a zlib
// bomb, a 2^31 header count, a 300 KB block or an uppercase name never reaches the kubelet (its
// arrivals log says what did) and is recorded as the client's malformed frame; a reused stream
// id ends the session; a resize line without end ends it in linear time; WebSocket protocol
// errors end with a Status and a close frame 1002; one identity's concurrent sessions are
// bounded (429 with Retry-After).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { constants, deflateSync } from 'node:zlib'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { readRecording, streamBytes } from '../../../src/sessions/recording.ts'
import {
  encodeFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  FrameParser,
  HeaderCompressor,
  SPDY3_HEADER_DICTIONARY,
  type SpdyFrame,
} from '../../../src/spdy/index.ts'
import type { SpdyArrivals } from '../../harness/kubelet/exec-spdy.ts'
import { startGatehouse } from '../../harness/gatehouse.ts'
import { namespaceWithPods } from '../support.ts'
import { authenticationConfig, CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'
import { rawConnect, requestHead, statusLines, type RawConnection } from './raw-http.ts'

const RUN = Math.random().toString(36).slice(2, 6)

/** A client frame (masked unless told otherwise), with any header bits a test wants wrong. */
function clientFrame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; rsv?: number; unmasked?: boolean; length64?: bigint } = {},
): Buffer {
  const b0 = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode
  const maskBit = opts.unmasked ? 0 : 0x80
  let head: Buffer
  if (opts.length64 !== undefined) {
    head = Buffer.alloc(10)
    head[1] = maskBit | 127
    head.writeBigUInt64BE(opts.length64, 2)
  } else if (payload.length < 126) head = Buffer.from([0, maskBit | payload.length])
  else {
    head = Buffer.alloc(4)
    head[1] = maskBit | 126
    head.writeUInt16BE(payload.length, 2)
  }
  head[0] = b0
  if (opts.unmasked) return Buffer.concat([head, payload])
  const mask = randomBytes(4)
  return Buffer.concat([head, mask, Buffer.from(payload.map((x, i) => x ^ mask[i & 3]!))])
}

/** Server frames in `bytes` (unmasked): opcode and payload. */
function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = []
  let o = bytes.indexOf('\r\n\r\n') + 4
  while (o + 2 <= bytes.length) {
    const len7 = bytes[o + 1]! & 0x7f
    let len = len7
    let h = 2
    if (len7 === 126) {
      len = bytes.readUInt16BE(o + 2)
      h = 4
    } else if (len7 === 127) {
      len = Number(bytes.readBigUInt64BE(o + 2))
      h = 10
    }
    if (o + h + len > bytes.length) break
    out.push({ opcode: bytes[o]! & 0x0f, payload: bytes.subarray(o + h, o + h + len) })
    o += h + len
  }
  return out
}

/** SPDY frames the client received after the 101 head. */
function spdyFrames(bytes: Buffer): SpdyFrame[] {
  const start = bytes.indexOf('\r\n\r\n') + 4
  const parser = new FrameParser()
  try {
    return parser.push(bytes.subarray(start))
  } catch {
    return []
  }
}

const dataOf = (frames: SpdyFrame[], id: number): string =>
  Buffer.concat(
    frames.flatMap((f) => (f.type === 'data' && f.streamId === id ? [f.data] : [])),
  ).toString()

function syn(id: number, headerBlock: Buffer, flags = 0): Buffer {
  return encodeFrame({
    type: 'syn_stream',
    streamId: id,
    associatedStreamId: 0,
    priority: 0,
    slot: 0,
    flags,
    headerBlock,
  })
}
const data = (id: number, text: string, flags = 0): Buffer =>
  encodeFrame({ type: 'data', streamId: id, flags, data: Buffer.from(text) })

/** A header block compressed as the first of its context (raw bytes, no validation). */
const firstBlock = (raw: Buffer): Buffer =>
  deflateSync(raw, { dictionary: SPDY3_HEADER_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH })

describe('issue 18: the session tap reads everything before it moves', () => {
  const env = useGatewayEnv()
  const ci = (e: GatewayEnv, repository = CI_REPOSITORY): Promise<string> =>
    e.issuer.mintGitHubActions({ repository, repository_owner: 'octo-org' })

  async function sessionsIn(e: GatewayEnv, ns: string, n = 1): Promise<SessionRecord[]> {
    const deadline = Date.now() + 20_000
    for (;;) {
      const found = await e.gatehouse.server.stores.sessions.querySessions({ namespace: ns })
      const ended = found.filter((s) => s.state !== 'live')
      if (ended.length >= n) return ended.reverse()
      if (Date.now() > deadline)
        throw new Error(`no ended session in ${ns}: ${JSON.stringify(found)}`)
      await sleep(50)
    }
  }

  async function recorded(
    e: GatewayEnv,
    s: SessionRecord,
  ): Promise<{ stdin: string; stdout: string }> {
    const { events } = await readRecording(
      e.gatehouse.server.sessions.recordings.open(s.recording!.key),
    )
    return {
      stdin: streamBytes(events, 'i').toString(),
      stdout: streamBytes(events, 'o').toString(),
    }
  }

  /** What the fake kubelet received in the SPDY sessions of pods in `ns`. */
  async function kubeletArrivals(e: GatewayEnv, ns: string): Promise<SpdyArrivals[]> {
    const file = e.cluster.kubeletRequestLog.replace(/\.jsonl$/, '') + '-spdy.jsonl'
    const deadline = Date.now() + 15_000
    for (;;) {
      let lines: SpdyArrivals[] = []
      try {
        lines = readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as SpdyArrivals)
          .filter((a) => a.path.includes(`/${ns}/`))
      } catch {
        /* not written yet */
      }
      if (lines.length || Date.now() > deadline) return lines
      await sleep(100)
    }
  }

  async function open(
    e: GatewayEnv,
    ns: string,
    how: 'websocket' | 'spdy',
    after = '',
    command = 'cat',
  ): Promise<RawConnection> {
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const c = await rawConnect(e.gatehouse)
    const path = `/api/v1/namespaces/${ns}/pods/box/exec?command=${command}&stdin=true&stdout=true`
    const headers =
      how === 'websocket'
        ? {
            Connection: 'Upgrade',
            Upgrade: 'websocket',
            'Sec-WebSocket-Version': '13',
            'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
            'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
          }
        : {
            Connection: 'Upgrade',
            Upgrade: 'SPDY/3.1',
            'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
          }
    const head = requestHead(how === 'websocket' ? 'GET' : 'POST', path, {
      Authorization: `Bearer ${await ci(e)}`,
      ...headers,
    })
    c.write(Buffer.concat([Buffer.from(head), Buffer.from(after, 'latin1')]))
    return c
  }

  test('WebSocket stdin frames in the same write as the upgrade request are recorded, then reach the container', async () => {
    const e = env()
    const ns = `gw-tap-wsearly-${RUN}`
    const early = Buffer.concat([
      clientFrame(2, Buffer.from('\x00early line\n')),
      clientFrame(2, Buffer.from([255, 0])), // v5: stdin is closed
    ])
    const c = await open(e, ns, 'websocket', early.toString('latin1'))
    await c.waitFor('early line')
    // the command ended: answer the kubelet's close frame, as a WebSocket client does
    const deadline = Date.now() + 10_000
    while (!serverFrames(c.received()).some((f) => f.opcode === 8) && Date.now() < deadline)
      await sleep(50)
    c.write(clientFrame(8, Buffer.from([0x03, 0xe8])))
    assert.equal(await c.closed(), true)
    const [s] = await sessionsIn(e, ns)
    assert.equal(s!.state, 'complete', s!.endReason)
    assert.ok(s!.bytes.clientToUpstream >= early.length, JSON.stringify(s!.bytes))
    const r = await recorded(e, s!)
    assert.equal(r.stdin, 'early line\n')
    assert.equal(r.stdout, 'early line\n')
  })

  test('SPDY streams opened in the same write as the upgrade request are recorded whole', async () => {
    const e = env()
    const ns = `gw-tap-spdyearly-${RUN}`
    const h = new HeaderCompressor()
    const early = Buffer.concat([
      syn(1, await h.compress({ streamtype: 'error' }), FLAG_FIN),
      syn(3, await h.compress({ streamtype: 'stdin' })),
      syn(5, await h.compress({ streamtype: 'stdout' }), FLAG_FIN),
      data(3, 'early spdy\n', FLAG_FIN),
    ])
    h.close()
    const c = await open(e, ns, 'spdy', early.toString('latin1'))
    const deadline = Date.now() + 10_000
    while (!dataOf(spdyFrames(c.received()), 5).includes('early spdy') && Date.now() < deadline)
      await sleep(50)
    assert.equal(dataOf(spdyFrames(c.received()), 5), 'early spdy\n')
    c.socket.destroy()
    const [s] = await sessionsIn(e, ns)
    const r = await recorded(e, s!)
    assert.equal(r.stdin, 'early spdy\n')
    assert.equal(r.stdout, 'early spdy\n')
    assert.ok(s!.bytes.clientToUpstream >= early.length)
  })

  const badBlocks: [string, () => Promise<Buffer>, RegExp][] = [
    [
      'a 64 MiB zlib bomb',
      () =>
        Promise.resolve(
          firstBlock(encodeHeaderBlock({ streamtype: 'stdin', x: 'x'.repeat(64 * 1024 * 1024) })),
        ),
      /control frame payload of \d+ bytes exceeds the limit/,
    ],
    [
      'a 1 MiB bomb in a small frame',
      () =>
        Promise.resolve(
          firstBlock(encodeHeaderBlock({ streamtype: 'stdin', x: 'x'.repeat(1024 * 1024) })),
        ),
      /inflates more than 100 times|exceeds the limit/,
    ],
    [
      'a 2^31 header count',
      () => {
        const raw = Buffer.alloc(4 + 4 + 10 + 4 + 5)
        raw.writeUInt32BE(0x80000000, 0)
        raw.writeUInt32BE(10, 4)
        raw.write('streamtype', 8)
        raw.writeUInt32BE(5, 18)
        raw.write('stdin', 22)
        return Promise.resolve(firstBlock(raw))
      },
      /2147483648 headers/,
    ],
    [
      'a 300 KB header block',
      () =>
        Promise.resolve(
          firstBlock(
            encodeHeaderBlock({
              streamtype: 'stdin',
              x: randomBytes(150 * 1024).toString('hex'),
            }),
          ),
        ),
      /control frame payload of \d+ bytes exceeds the limit/,
    ],
    [
      'an uppercase header name',
      () => {
        const raw = Buffer.alloc(4 + 4 + 10 + 4 + 5)
        raw.writeUInt32BE(1, 0)
        raw.writeUInt32BE(10, 4)
        raw.write('StreamType', 8)
        raw.writeUInt32BE(5, 18)
        raw.write('stdin', 22)
        return Promise.resolve(firstBlock(raw))
      },
      /not lowercase: StreamType/,
    ],
  ]
  for (const [name, block, reason] of badBlocks) {
    test(`SPDY: ${name} never reaches the kubelet, nor the DATA behind it; recorded as the client's malformed frame`, async () => {
      const e = env()
      const ns = `gw-tap-bad-${name.replace(/[^a-z0-9]+/gi, '').toLowerCase()}-${RUN}`.slice(0, 60)
      const c = await open(
        e,
        ns,
        'spdy',
        Buffer.concat([syn(1, await block()), data(1, 'behind the bomb\n')]).toString('latin1'),
      )
      assert.equal(await c.closed(15_000), true)
      const [s] = await sessionsIn(e, ns)
      assert.equal(s!.state, 'terminated')
      assert.match(s!.endReason ?? '', /^malformed client frame: /)
      assert.match(s!.endReason ?? '', reason)
      assert.equal(s!.bytes.clientToUpstream, 0)
      const arrivals = await kubeletArrivals(e, ns)
      assert.equal(arrivals.length, 1, JSON.stringify(arrivals))
      assert.deepEqual(arrivals[0]!.synStreams, [])
      assert.equal(arrivals[0]!.dataBytes, 0)
      assert.equal(arrivals[0]!.protocolError, undefined)
    })
  }

  test('SPDY: a second SYN_STREAM reusing a stream id ends the session; the kubelet never sees it', async () => {
    const e = env()
    const ns = `gw-tap-reuse-${RUN}`
    const h = new HeaderCompressor()
    const opened = Buffer.concat([
      syn(1, await h.compress({ streamtype: 'error' }), FLAG_FIN),
      syn(3, await h.compress({ streamtype: 'stdin' })),
      syn(5, await h.compress({ streamtype: 'stdout' }), FLAG_FIN),
    ])
    const c = await open(e, ns, 'spdy', opened.toString('latin1'))
    await sleep(500)
    // stdin's id again, now as stdout: spdystream keeps the first stream; a tap that followed
    // the second would record what goes to the container's stdin as output
    c.write(
      Buffer.concat([syn(3, await h.compress({ streamtype: 'stdout' })), data(3, 'retyped\n')]),
    )
    h.close()
    assert.equal(await c.closed(15_000), true)
    const [s] = await sessionsIn(e, ns)
    assert.equal(s!.state, 'terminated')
    assert.match(s!.endReason ?? '', /malformed client frame: SYN_STREAM with stream id 3 after 5/)
    const arrivals = await kubeletArrivals(e, ns)
    assert.deepEqual(
      arrivals[0]!.synStreams.map((x) => x.streamId),
      [1, 3, 5],
    )
    assert.equal(arrivals[0]!.dataBytes, 0)
  })

  test('SPDY: DATA on a stream never opened ends the session', async () => {
    const e = env()
    const ns = `gw-tap-orphan-${RUN}`
    const h = new HeaderCompressor()
    const frames = Buffer.concat([
      syn(1, await h.compress({ streamtype: 'error' }), FLAG_FIN),
      data(7, 'to nobody\n'),
    ])
    h.close()
    const c = await open(e, ns, 'spdy', frames.toString('latin1'))
    assert.equal(await c.closed(15_000), true)
    const [s] = await sessionsIn(e, ns)
    assert.match(s!.endReason ?? '', /DATA on stream 7, which was never opened/)
  })

  test('SPDY: a resize line that never ends (4 MB) ends the session at once, not after minutes', async () => {
    const e = env()
    const ns = `gw-tap-resize-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const h = new HeaderCompressor()
    const c = await rawConnect(e.gatehouse)
    c.write(
      requestHead(
        'POST',
        `/api/v1/namespaces/${ns}/pods/box/exec?command=cat&stdin=true&stdout=true&tty=true`,
        {
          Authorization: `Bearer ${await ci(e)}`,
          Connection: 'Upgrade',
          Upgrade: 'SPDY/3.1',
          'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
        },
      ),
    )
    await c.waitFor('\r\n\r\n')
    c.write(
      Buffer.concat([
        syn(1, await h.compress({ streamtype: 'error' }), FLAG_FIN),
        syn(3, await h.compress({ streamtype: 'stdin' })),
        syn(5, await h.compress({ streamtype: 'stdout' }), FLAG_FIN),
        syn(7, await h.compress({ streamtype: 'resize' })),
        data(7, '{"Width":100,"Height":30}\n'),
      ]),
    )
    h.close()
    const started = performance.now()
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    for (let i = 0; i < 64 && c.socket.writable; i++)
      c.write(encodeFrame({ type: 'data', streamId: 7, flags: 0, data: chunk }))
    assert.equal(await c.closed(15_000), true)
    const [s] = await sessionsIn(e, ns)
    assert.match(s!.endReason ?? '', /a resize message longer than 4096 bytes/)
    console.log(`  resize flood refused after ${Math.round(performance.now() - started)} ms`)
  })

  describe('WebSocket protocol errors end with a Status and a close frame 1002', () => {
    const errors: [string, Buffer, RegExp][] = [
      ['an unmasked frame', clientFrame(2, Buffer.from('\x00hi'), { unmasked: true }), /unmasked/],
      [
        'a 2^63 length',
        clientFrame(2, Buffer.alloc(0), { length64: 1n << 63n }).subarray(0, 14),
        /beyond 4 GiB/,
      ],
      ['a fragmented ping', clientFrame(9, Buffer.from('p'), { fin: false }), /control frame/],
      ['a 126-byte ping', clientFrame(9, Buffer.alloc(126)), /control frame/],
      ['RSV bits', clientFrame(2, Buffer.from('\x00hi'), { rsv: 4 }), /reserved bits/],
      ['an unknown opcode', clientFrame(3, Buffer.from('x')), /unknown opcode 3/],
      [
        'a message on the stdout channel',
        clientFrame(2, Buffer.from('\x01to stdout?')),
        /channel 1, which carries nothing to the container/,
      ],
    ]
    for (const [name, frame, reason] of errors) {
      test(name, async () => {
        const e = env()
        const ns = `gw-tap-ws-${name.replace(/[^a-z0-9]+/gi, '').toLowerCase()}-${RUN}`.slice(0, 60)
        const c = await open(e, ns, 'websocket')
        await c.waitFor('\r\n\r\n')
        assert.deepEqual(statusLines(c.received()), [101])
        c.write(clientFrame(2, Buffer.from('\x00fine\n')))
        await c.waitFor('fine')
        c.write(frame)
        assert.equal(await c.closed(), true)
        const frames = serverFrames(c.received())
        const close = frames.find((f) => f.opcode === 8)
        assert.ok(close, 'no close frame')
        assert.equal(close.payload.readUInt16BE(0), 1002)
        const status = frames.find((f) => f.opcode === 2 && f.payload[0] === 3)
        assert.ok(status, 'no Status on the error channel')
        const body = JSON.parse(status.payload.subarray(1).toString()) as {
          kind: string
          code: number
          message: string
        }
        assert.equal(body.kind, 'Status')
        assert.equal(body.code, 400)
        assert.match(body.message, reason)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.state, 'terminated')
        assert.match(s!.endReason ?? '', /^malformed client frame: /)
        assert.equal((await recorded(e, s!)).stdin, 'fine\n')
      })
    }
  })

  test('one identity has at most sessions.maxPerIdentity sessions open: the next gets 429 with Retry-After', async () => {
    const e = env()
    const ns = `gw-tap-limit-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const g = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
      overrides: { sessions: { maxPerIdentity: 2 } },
    })
    try {
      const token = await ci(e, 'octo-org/limits')
      const other = await ci(e, 'octo-org/another')
      const exec = async (t: string): Promise<RawConnection> => {
        const c = await rawConnect(g)
        c.write(
          requestHead(
            'GET',
            `/api/v1/namespaces/${ns}/pods/box/exec?command=cat&stdin=true&stdout=true`,
            {
              Authorization: `Bearer ${t}`,
              Connection: 'Upgrade',
              Upgrade: 'websocket',
              'Sec-WebSocket-Version': '13',
              'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
              'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
            },
          ),
        )
        await c.waitFor('\r\n\r\n')
        return c
      }
      const first = await exec(token)
      const second = await exec(token)
      assert.deepEqual(
        [statusLines(first.received()), statusLines(second.received())],
        [[101], [101]],
      )
      const third = await exec(token)
      assert.equal(await third.closed(), true)
      const text = third.received().toString()
      assert.deepEqual(statusLines(third.received()), [429], text)
      assert.match(text, /\r\nRetry-After: 10\r\n/i)
      const status = JSON.parse(text.split('\r\n\r\n')[1]!) as { code: number; message: string }
      assert.equal(status.code, 429)
      assert.match(status.message, /already has 2 exec, attach and port-forward sessions open/)
      // another identity is not affected; a closed session frees its slot
      const elsewhere = await exec(other)
      assert.deepEqual(statusLines(elsewhere.received()), [101])
      elsewhere.socket.destroy()
      first.socket.destroy()
      await sleep(500)
      const again = await exec(token)
      assert.deepEqual(statusLines(again.received()), [101])
      for (const c of [second, again]) c.socket.destroy()
    } finally {
      await g.stop()
    }
  })
})
