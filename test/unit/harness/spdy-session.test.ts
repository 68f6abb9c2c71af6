import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { FrameParser, type SpdyFrame } from '../../../src/spdy/index.ts'
import { SpdySession, type SpdyStream } from '../../harness/spdy/session.ts'

// Every socket of the file, destroyed at the end so no test leaves the process alive.
const opened: Socket[] = []
after(() => opened.forEach((s) => s.destroy()))

async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(port, '127.0.0.1')
  const [serverSide] = await accepted
  await once(client, 'connect')
  server.close()
  opened.push(client, serverSide)
  return [client, serverSide]
}

async function sessions(): Promise<{
  client: SpdySession
  server: SpdySession
  sockets: [Socket, Socket]
}> {
  const sockets = await socketPair()
  return {
    client: new SpdySession(sockets[0], { role: 'client' }),
    server: new SpdySession(sockets[1], { role: 'server' }),
    sockets,
  }
}

function readAll(stream: SpdyStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  stream.on('data', (d: Buffer) => chunks.push(d))
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
}

describe('SPDY session', () => {
  test('streams carry headers and bytes both ways, with half-close (FIN)', async () => {
    const { client, server } = await sessions()
    server.on('stream', (stream) => {
      assert.equal(stream.header('streamtype'), 'data')
      assert.equal(stream.header('port'), '7000')
      void stream.reply()
      // Echo, upper-cased, and finish after the client's FIN.
      stream.on('data', (d: Buffer) => stream.write(d.toString().toUpperCase()))
      stream.on('end', () => stream.end('!'))
    })
    const stream = await client.openStream({ streamtype: 'data', port: '7000', requestid: '0' })
    assert.equal(stream.id % 2, 1, 'client stream ids are odd')
    const received = readAll(stream)
    stream.write('hello ')
    stream.end('spdy')
    assert.equal((await received).toString(), 'HELLO SPDY!')
    client.destroy()
  })

  test('many streams on one connection, large payloads split into DATA frames', async () => {
    const { client, server } = await sessions()
    server.on('stream', (stream) => {
      void stream.reply()
      stream.pipe(stream)
    })
    const payload = Buffer.alloc(1024 * 1024 + 17)
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const s = await client.openStream({ streamtype: 'data', requestid: String(i) })
        const got = readAll(s)
        s.end(i === 0 ? payload : Buffer.from(`stream ${i}`))
        return got
      }),
    )
    assert.ok(results[0]!.equals(payload))
    for (let i = 1; i < 20; i++) assert.equal(results[i]!.toString(), `stream ${i}`)
    client.destroy()
  })

  test('PING is answered by the peer', async () => {
    const { client } = await sessions()
    const rtt = await client.ping()
    assert.ok(rtt >= 0)
    client.destroy()
  })

  test('RST_STREAM from the peer ends the stream and records the status', async () => {
    const { client, server } = await sessions()
    server.on('stream', (stream) => {
      void stream.reply().then(() => stream.reset(5))
    })
    const stream = await client.openStream({ streamtype: 'stdout' })
    await once(stream, 'close')
    assert.equal(stream.resetStatus, 5)
    client.destroy()
  })

  test('a stream the peer refuses rejects openStream instead of hanging', async () => {
    const { client, server } = await sessions()
    server.on('stream', (stream) => stream.reset(3))
    await assert.rejects(
      client.openStream({ streamtype: 'bogus' }),
      /peer refused stream 1 \(status 3\)/,
    )
    client.destroy()
  })

  test('GOAWAY stops new streams', async () => {
    const { client, server } = await sessions()
    const goaway = once(client, 'goaway')
    await server.goAway()
    assert.deepEqual(await goaway, [0])
    await assert.rejects(client.openStream({ streamtype: 'data' }), /session is closed/)
    client.destroy()
  })

  test('garbage from the peer ends the session with GOAWAY(PROTOCOL_ERROR), no crash', async () => {
    const [raw, serverSide] = await socketPair()
    const server = new SpdySession(serverSide, { role: 'server' })
    const errors: Error[] = []
    server.on('protocolError', (e) => errors.push(e))
    const parser = new FrameParser()
    const fromServer: SpdyFrame[] = []
    raw.on('data', (d: Buffer) => fromServer.push(...parser.push(d)))
    const closed = once(server, 'close')
    raw.write(Buffer.from([0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0])) // SPDY/2 SYN_STREAM
    await closed
    assert.match(errors[0]?.message ?? '', /unsupported SPDY version 2/)
    await once(raw, 'close')
    assert.deepEqual(fromServer, [{ type: 'goaway', lastGoodStreamId: 0, status: 1 }])
  })

  test('a SYN_STREAM with a corrupt header block ends the session', async () => {
    const [raw, serverSide] = await socketPair()
    const server = new SpdySession(serverSide, { role: 'server' })
    const errors: Error[] = []
    server.on('protocolError', (e) => errors.push(e))
    let streams = 0
    server.on('stream', () => streams++)
    const closed = once(server, 'close')
    const body = Buffer.concat([
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from('definitely not zlib'),
    ])
    raw.write(Buffer.concat([Buffer.from([0x80, 3, 0, 1, 0, 0, 0, body.length]), body]))
    await closed
    assert.equal(streams, 0)
    assert.match(errors[0]?.message ?? '', /header decompression failed/)
    raw.destroy()
  })

  test('stream ids out of order or of the wrong parity are a protocol error', async () => {
    const { client, server, sockets } = await sessions()
    const errors: Error[] = []
    client.on('protocolError', (e) => errors.push(e))
    const closed = once(client, 'close')
    // A server-opened stream must be even; a misbehaving server sends 3.
    const rogue = new SpdySession(sockets[1], { role: 'client' })
    void rogue.openStream({ streamtype: 'x' }).catch(() => undefined)
    void rogue.openStream({ streamtype: 'y' }).catch(() => undefined)
    await closed
    assert.match(errors[0]?.message ?? '', /wrong parity/)
    server.destroy()
    rogue.destroy()
  })

  test('the connection closing mid-frame closes every stream and rejects pending opens', async () => {
    const { client, server } = await sessions()
    server.on('stream', () => {
      /* never reply */
    })
    const pending = client.openStream({ streamtype: 'stdin' })
    await new Promise((r) => setTimeout(r, 20))
    server.destroy()
    await assert.rejects(pending, /session closed/)
  })
})
