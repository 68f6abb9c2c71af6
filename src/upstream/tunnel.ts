// The terminal stage for Upgrade requests (exec, attach, port-forward over SPDY/3.1 or
// WebSocket): open our own HTTP/1.1 connection to the API server, send the rewritten request,
// relay its answer (101 or a refusal such as the 400/403 that makes kubectl fall back from
// WebSocket to SPDY), then splice the two sockets. Bytes pass unchanged in both directions.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { connect, type TLSSocket } from 'node:tls'
import { GatewayError } from '../errors/index.ts'
import type { UpstreamCluster } from './cluster.ts'
import { upstreamError } from './forward.ts'

const MAX_RESPONSE_HEAD = 64 * 1024

export interface TunnelResult {
  status: number
  /** Resolves when both sides are closed, with the bytes relayed each way. */
  closed: Promise<{ clientToUpstream: number; upstreamToClient: number }>
}

function requestHead(method: string, path: string, host: string, headers: string[]): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`]
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`)
  return lines.join('\r\n') + '\r\n\r\n'
}

function connectUpstream(cluster: UpstreamCluster): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const port = Number(cluster.server.port || 443)
    const socket = connect({
      ...cluster.tls,
      host: cluster.server.hostname,
      port,
      ALPNProtocols: ['http/1.1'],
    })
    const timer = setTimeout(
      () =>
        socket.destroy(
          Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }),
        ),
      cluster.config.upstreamTimeouts.connectMs,
    )
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      resolve(socket)
    })
    socket.once('error', (e: Error) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/** Reads the upstream response head; returns it and any bytes after it. */
function readResponseHead(
  socket: TLSSocket,
  timeoutMs: number,
): Promise<{ head: Buffer; rest: Buffer; status: number }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const timer = setTimeout(
      () => done(Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
      timeoutMs,
    )
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end >= 0) {
        const head = buf.subarray(0, end + 4)
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'))
        if (!m) return done(new Error('malformed response from the API server'))
        done(undefined, { head, rest: buf.subarray(end + 4), status: Number(m[1]) })
      } else if (buf.length > MAX_RESPONSE_HEAD)
        done(new Error('oversized response head from the API server'))
    }
    const onEnd = (): void =>
      done(new Error('the API server closed the connection before answering'))
    const done = (err?: Error, value?: { head: Buffer; rest: Buffer; status: number }): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', done)
      socket.pause()
      if (err) reject(err)
      else resolve(value!)
    }
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', done)
  })
}

/** Pipes two sockets with backpressure; a close or error on one side ends the other. */
function splice(client: Duplex, upstream: TLSSocket): TunnelResult['closed'] {
  let c2u = 0
  let u2c = 0
  client.on('data', (d: Buffer) => (c2u += d.length))
  upstream.on('data', (d: Buffer) => (u2c += d.length))
  client.pipe(upstream)
  upstream.pipe(client)
  return new Promise((resolve) => {
    let open = 2
    const closed = (): void => {
      if (--open === 0) resolve({ clientToUpstream: c2u, upstreamToClient: u2c })
    }
    client.once('close', () => {
      upstream.destroy()
      closed()
    })
    upstream.once('close', () => {
      // Let buffered bytes reach the client before it is closed.
      client.end()
      setTimeout(() => client.destroy(), 5000).unref()
      closed()
    })
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
}

/** Takes over an upgraded connection (session recording): relays it and resolves when it ends. */
export type SessionRelayer = (
  client: Duplex,
  upstream: TLSSocket,
  first: Buffer,
) => Promise<{ clientToUpstream: number; upstreamToClient: number }>

export async function tunnelUpgrade(opts: {
  cluster: UpstreamCluster
  req: IncomingMessage
  socket: Duplex
  head: Buffer
  path: string
  headers: string[]
  /**
   * Called when the API server switched protocols, before the client hears of it: returns who
   * relays the session, or throws a GatewayError to refuse it (nothing has reached the client).
   */
  onSwitched?: (responseHead: string) => Promise<SessionRelayer | undefined>
}): Promise<TunnelResult> {
  const { cluster, socket } = opts
  let upstream: TLSSocket
  try {
    upstream = await connectUpstream(cluster)
  } catch (e) {
    throw upstreamError(cluster, e)
  }
  if (socket.destroyed) {
    upstream.destroy()
    throw new GatewayError('GW_REQUEST_INVALID', 'client went away')
  }
  upstream.write(
    requestHead(opts.req.method ?? 'GET', opts.path, cluster.server.host, opts.headers),
  )
  if (opts.head.length) upstream.write(opts.head)
  let response: { head: Buffer; rest: Buffer; status: number }
  try {
    response = await readResponseHead(upstream, cluster.config.upstreamTimeouts.headersMs)
  } catch (e) {
    upstream.destroy()
    throw upstreamError(cluster, e)
  }
  let relayer: SessionRelayer | undefined
  if (response.status === 101 && opts.onSwitched) {
    try {
      relayer = await opts.onSwitched(response.head.toString('latin1'))
    } catch (e) {
      upstream.destroy()
      throw e
    }
    if (socket.destroyed) {
      upstream.destroy()
      throw new GatewayError('GW_REQUEST_INVALID', 'client went away')
    }
  }
  socket.write(response.head)
  if (relayer) return { status: response.status, closed: relayer(socket, upstream, response.rest) }
  if (response.rest.length) socket.write(response.rest)
  const closed = splice(socket, upstream)
  upstream.resume()
  return { status: response.status, closed }
}
