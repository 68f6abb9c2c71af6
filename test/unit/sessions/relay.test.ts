// The session relay's contract, on real sockets: bytes pass unchanged both ways; a chunk the tap
// refuses is never forwarded and ends the session; a lagging recorder pauses both sides; a
// termination waits for the frame in flight, then speaks last.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { detectorSet } from '../../../src/masking/detectors.ts'
import { createClientRewriter } from '../../../src/sessions/client-masking.ts'
import { relaySession } from '../../../src/sessions/relay.ts'
import { TapProtocolError, type SessionTap } from '../../../src/sessions/tap.ts'
import { encodeServerFrame, Opcode } from '../../../src/sessions/websocket-frames.ts'

const opened: Socket[] = []
after(() => opened.forEach((s) => s.destroy()))

async function pair(): Promise<[Socket, Socket]> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const a = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [b] = await accepted
  await once(a, 'connect')
  server.close()
  opened.push(a, b)
  return [a, b]
}

/** client ⇄ [relay] ⇄ upstream, with the far ends returned for the test to drive. */
async function relayed(
  tap: Partial<SessionTap>,
  recorder?: { backlogged: boolean; writable(): Promise<void> },
  rewriter?: Parameters<typeof relaySession>[0]['rewriter'],
  clientFirst?: Buffer,
) {
  const [clientFar, clientNear] = await pair()
  const [upstreamNear, upstreamFar] = await pair()
  const fullTap: SessionTap = {
    fromClient: () => undefined,
    fromUpstream: () => undefined,
    clientPendingBytes: () => 0,
    settled: () => Promise.resolve(),
    upstreamBytesToBoundary: () => 0,
    termination: () => Buffer.from('<bye>'),
    close: () => undefined,
    ...tap,
  }
  const relay = relaySession({
    client: clientNear,
    upstream: upstreamNear,
    first: Buffer.alloc(0),
    ...(clientFirst ? { clientFirst } : {}),
    tap: fullTap,
    ...(recorder ? { recorder } : {}),
    ...(rewriter ? { rewriter } : {}),
  })
  const received = { client: [] as Buffer[], upstream: [] as Buffer[] }
  clientFar.on('data', (d: Buffer) => received.client.push(d))
  upstreamFar.on('data', (d: Buffer) => received.upstream.push(d))
  return { relay, clientFar, upstreamFar, upstreamNear, received }
}

test('bytes pass unchanged both ways, and a close on one side closes the other', async () => {
  const { relay, clientFar, upstreamFar, received } = await relayed({})
  const big = Buffer.alloc(3 * 1024 * 1024, 7)
  clientFar.write('to upstream')
  upstreamFar.write(big)
  await sleep(300)
  assert.equal(Buffer.concat(received.upstream).toString(), 'to upstream')
  assert.ok(Buffer.concat(received.client).equals(big))
  clientFar.end()
  const end = await relay.closed
  assert.equal(end.clientToUpstream, 11)
  assert.equal(end.upstreamToClient, big.length)
  assert.equal(end.endedBy, 'client')
})

test('a chunk the tap refuses is not forwarded; the session ends with the reason', async () => {
  const { relay, clientFar, received } = await relayed({
    fromClient: (c) => {
      if (c.includes('evil')) throw new TapProtocolError('bad frame')
    },
  })
  clientFar.write('fine')
  await sleep(100)
  clientFar.write('evil')
  const end = await relay.closed
  assert.equal(Buffer.concat(received.upstream).toString(), 'fine')
  assert.equal(end.endedBy, 'gatehouse')
  assert.match(end.protocolError ?? '', /malformed client frame: bad frame/)
})

test("client bytes move only once the tap has read them whole; the upgrade's early bytes first", async () => {
  const seen: string[] = []
  let pending = 0
  const { relay, clientFar, received } = await relayed(
    {
      fromClient: (c) => {
        seen.push(c.toString())
        // frames end at '|': everything after the last one is an incomplete frame
        const all = seen.join('')
        pending = all.length - (all.lastIndexOf('|') + 1)
      },
      clientPendingBytes: () => pending,
    },
    undefined,
    undefined,
    Buffer.from('early|ha'),
  )
  await sleep(100)
  assert.equal(seen[0], 'early|ha', 'the early bytes were not read first')
  assert.equal(Buffer.concat(received.upstream).toString(), 'early|')
  clientFar.write('lf')
  await sleep(100)
  assert.equal(Buffer.concat(received.upstream).toString(), 'early|', 'an incomplete frame moved')
  clientFar.write('|')
  await sleep(100)
  assert.equal(Buffer.concat(received.upstream).toString(), 'early|half|')
  clientFar.destroy()
  const end = await relay.closed
  assert.equal(end.clientToUpstream, 'early|half|'.length)
})

test("a client's protocol error: the client hears Gatehouse's termination (protocolError), then the close", async () => {
  const asked: boolean[] = []
  const { relay, clientFar, received } = await relayed({
    fromClient: () => {
      throw new TapProtocolError('unmasked frame from the client')
    },
    termination: (_m, _r, protocolError) => {
      asked.push(protocolError ?? false)
      return Buffer.from('<1002>')
    },
  })
  clientFar.write('x')
  await once(clientFar, 'end')
  assert.equal(Buffer.concat(received.client).toString(), '<1002>')
  assert.deepEqual(asked, [true])
  const end = await relay.closed
  assert.match(end.protocolError ?? '', /malformed client frame: unmasked frame from the client/)
  assert.equal(Buffer.concat(received.upstream).length, 0)
})

test('while the recorder lags, nothing is read; once it catches up, everything flows', async () => {
  let release!: () => void
  const recorder = {
    backlogged: false,
    writable: () => new Promise<void>((r) => (release = r)),
  }
  const { relay, clientFar, upstreamFar, received } = await relayed({}, recorder)
  upstreamFar.write('first')
  await sleep(100)
  recorder.backlogged = true
  upstreamFar.write('second') // read (it is what shows the backlog), then both sides pause
  await sleep(100)
  const before = Buffer.concat(received.client).toString()
  upstreamFar.write('third')
  clientFar.write('stdin')
  await sleep(200)
  assert.equal(Buffer.concat(received.client).toString(), before, 'read while the recorder lagged')
  assert.equal(Buffer.concat(received.upstream).toString(), '')
  recorder.backlogged = false
  release()
  await sleep(200)
  assert.equal(Buffer.concat(received.client).toString(), 'firstsecondthird')
  assert.equal(Buffer.concat(received.upstream).toString(), 'stdin')
  clientFar.destroy()
  await relay.closed
})

test('terminate waits for the frame in flight, then sends the termination and closes', async () => {
  let toBoundary = 0
  const { relay, upstreamFar, clientFar, received } = await relayed({
    upstreamBytesToBoundary: () => toBoundary,
  })
  upstreamFar.write('AAAA')
  await sleep(100)
  toBoundary = 3 // three bytes of the current frame are still to come
  relay.terminate('over', 'test')
  await sleep(100)
  assert.equal(Buffer.concat(received.client).toString(), 'AAAA', 'spoke in the middle of a frame')
  upstreamFar.write('BBBCCC') // BBB ends the frame; CCC must never reach the client
  await once(clientFar, 'end')
  assert.equal(Buffer.concat(received.client).toString(), 'AAAABBB<bye>')
  const end = await relay.closed
  assert.equal(end.endedBy, 'gatehouse')
})

const maskingRewriter: Parameters<typeof relaySession>[0]['rewriter'] = (send, onError) =>
  createClientRewriter({
    dialect: {
      transport: 'websocket',
      subprotocol: 'v4.channel.k8s.io',
      base64: false,
      version: 4,
    },
    streamTypes: undefined,
    masking: { detectors: detectorSet(), replacement: { kind: 'placeholder' } },
    send,
    onError,
  })

test('with client masking, a client that does not read stops the upstream; all arrives after', async () => {
  const { relay, upstreamFar, upstreamNear, clientFar, received } = await relayed(
    {},
    undefined,
    maskingRewriter,
  )
  clientFar.pause()
  const line = Buffer.from('x'.repeat(1023) + '\n')
  const frame = encodeServerFrame(
    Opcode.BINARY,
    Buffer.concat([Buffer.from([1]), ...Array<Buffer>(32).fill(line)]),
  )
  const frames = 24 * 32 // 24 MiB of stdout: more than the sockets' buffers hold
  for (let i = 0; i < frames; i++) upstreamFar.write(frame)
  await sleep(500)
  assert.ok(upstreamNear.isPaused(), 'the upstream is still read while the client is not')
  clientFar.resume()
  const total = frames * frame.length
  while (received.client.reduce((n, b) => n + b.length, 0) < total) await sleep(50)
  assert.ok(Buffer.concat(received.client).equals(Buffer.concat(Array<Buffer>(frames).fill(frame))))
  clientFar.destroy()
  await relay.closed
})

test('with client masking, held-back text goes out masked before Gatehouse speaks last', async () => {
  const { relay, upstreamFar, clientFar, received } = await relayed({}, undefined, maskingRewriter)
  upstreamFar.write(encodeServerFrame(Opcode.BINARY, Buffer.from('\x01ssn 123-45-6789')))
  const before = encodeServerFrame(Opcode.BINARY, Buffer.from('\x01ssn '))
  while (Buffer.concat(received.client).length < before.length) await sleep(10)
  await sleep(50)
  assert.deepEqual(Buffer.concat(received.client), before, 'the value under way is held back')
  relay.terminate('over', 'test')
  await once(clientFar, 'end')
  assert.deepEqual(
    Buffer.concat(received.client),
    Buffer.concat([
      before,
      encodeServerFrame(Opcode.BINARY, Buffer.from('\x01[MASKED:ssn]')),
      Buffer.from('<bye>'),
    ]),
  )
  await relay.closed
})
