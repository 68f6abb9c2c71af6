// The terminal stage for Upgrade requests (exec, attach, port-forward over SPDY/3.1 or
// WebSocket): open our own HTTP/1.1 connection to the API server, send the rewritten request,
// and read its answer with Node's HTTP parser.
//  - 101: the session's relayer (a tap that reads every frame) takes both sockets. The bytes the
//    client sent after its request head (`head`, and anything later) are handed to the relayer
//    first: nothing of the client's reaches the API server before the tap has read it.
//  - anything else (the 400 or 403 that makes kubectl fall back from WebSocket to SPDY, a 404):
//    relayed as an ordinary response with `Connection: close`, then the connection is closed.
//    The client's socket is never read again, so a request written after the upgrade request
//    (in the same write or later) never reaches anyone (issue 18: request smuggling).
import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { GatewayError } from '../errors/index.ts'
import type { UpstreamCluster } from './cluster.ts'
import { upstreamError } from './forward.ts'
import { relayableResponseHeaders } from './headers.ts'

export interface TunnelResult {
  status: number
  /** Resolves when both sides are closed, with the bytes relayed each way. */
  closed: Promise<{ clientToUpstream: number; upstreamToClient: number }>
}

/** Takes over an upgraded connection: relays it through a tap and resolves when it ends. */
export type SessionRelayer = (
  client: Duplex,
  upstream: Duplex,
  /** Bytes the API server sent right after its 101 head. */
  first: Buffer,
  /** Bytes the client sent right after its request head (to be read by the tap first). */
  clientFirst: Buffer,
) => Promise<{ clientToUpstream: number; upstreamToClient: number }>

/** Request headers that describe a body or an expectation: an upgrade request has neither. */
const NO_BODY = new Set(['content-length', 'expect'])
/** After the answer to a refused upgrade, how long the client may take to read it. */
const CLOSE_GRACE_MS = 5000

type Answer =
  | { switched: true; res: IncomingMessage; socket: Socket; head: Buffer }
  | { switched: false; res: IncomingMessage }

/** Sends the upgrade request on a connection of its own; resolves with the API server's answer. */
function sendUpgrade(
  cluster: UpstreamCluster,
  method: string,
  path: string,
  headers: string[],
  client: Duplex,
): Promise<Answer> {
  const flat = ['Host', cluster.server.host]
  for (let i = 0; i < headers.length; i += 2)
    if (!NO_BODY.has(headers[i]!.toLowerCase())) flat.push(headers[i]!, headers[i + 1]!)
  // as client-go sends a POST without a body; without it Node would send a chunked body's end
  // (five bytes the API server passes on to the kubelet as the session's first bytes)
  if (method !== 'GET') flat.push('Content-Length', '0')
  return new Promise((resolve, reject) => {
    const { connectMs, headersMs } = cluster.config.upstreamTimeouts
    const req = httpsRequest({
      ...cluster.tls,
      host: cluster.server.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(cluster.server.port || 443),
      method,
      path,
      headers: flat,
      setHost: false,
      agent: false,
    })
    const fail = (code: string, message: string): void =>
      void req.destroy(Object.assign(new Error(message), { code }))
    let timer = setTimeout(() => fail('UND_ERR_CONNECT_TIMEOUT', 'connect timeout'), connectMs)
    req.once('socket', (s: Socket) =>
      s.once('secureConnect', () => {
        clearTimeout(timer)
        timer = setTimeout(() => fail('UND_ERR_HEADERS_TIMEOUT', 'headers timeout'), headersMs)
      }),
    )
    const clientGone = (): void => fail('ECONNRESET', 'client went away')
    client.once('close', clientGone)
    const settle = (): void => {
      clearTimeout(timer)
      client.off('close', clientGone)
    }
    req.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      settle()
      resolve({ switched: true, res, socket, head })
    })
    req.once('response', (res: IncomingMessage) => {
      settle()
      resolve({ switched: false, res })
    })
    // later errors belong to the answer's own streams; the first one before an answer fails it
    req.on('error', (e) => {
      settle()
      reject(client.destroyed ? new GatewayError('GW_REQUEST_INVALID', 'client went away') : e)
    })
    req.end()
  })
}

function headerValue(headers: readonly string[], name: string): string {
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i]!.toLowerCase() === name) return headers[i + 1]!.trim()
  return ''
}

/** The 101 head as the client will receive it (and as the session reads its dialect from). */
function switchedHead(res: IncomingMessage): string {
  const lines = [`HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}`]
  for (let i = 0; i < res.rawHeaders.length; i += 2)
    lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
  return lines.join('\r\n') + '\r\n\r\n'
}

/**
 * Relays a non-101 answer as an ordinary response, then closes the client's connection. The
 * API server sets no Audit-ID on exec, attach and port-forward answers (the kubelet's text for
 * a refused upgrade): Gatehouse adds its request id, as on every answer it gives.
 */
function relayAnswer(
  res: IncomingMessage,
  client: Duplex,
  auditId: string,
): TunnelResult['closed'] {
  const headers = relayableResponseHeaders(res.headers)
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`]
  for (const [name, value] of Object.entries(headers))
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`)
  if (auditId && !('audit-id' in headers)) lines.push(`Audit-ID: ${auditId}`)
  // no Content-Length (a chunked answer): the body ends with the connection
  lines.push('Connection: close')
  client.write(lines.join('\r\n') + '\r\n\r\n')
  let bytes = 0
  res.on('data', (d: Buffer) => (bytes += d.length))
  res.pipe(client)
  return new Promise((resolve) => {
    let ended = false
    const done = (): void => {
      if (ended) return
      ended = true
      res.destroy()
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref()
      resolve({ clientToUpstream: 0, upstreamToClient: bytes })
    }
    res.once('end', done)
    res.once('error', () => {
      client.destroy()
      done()
    })
    client.once('close', done)
  })
}

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
  onSwitched: (responseHead: string) => Promise<SessionRelayer>
}): Promise<TunnelResult> {
  const { cluster, socket } = opts
  if (socket.destroyed) throw new GatewayError('GW_REQUEST_INVALID', 'client went away')
  let answer: Answer
  try {
    answer = await sendUpgrade(cluster, opts.req.method ?? 'GET', opts.path, opts.headers, socket)
  } catch (e) {
    throw upstreamError(cluster, e)
  }
  if (!answer.switched)
    return {
      status: answer.res.statusCode ?? 502,
      closed: relayAnswer(answer.res, socket, headerValue(opts.headers, 'audit-id')),
    }
  const upstream = answer.socket
  let relayer: SessionRelayer
  try {
    const asked = headerValue(opts.headers, 'upgrade')
    const got = answer.res.headers.upgrade ?? ''
    if (got.toLowerCase() !== asked.toLowerCase())
      throw new GatewayError(
        'GW_SESSION_UNSUPPORTED',
        `Gatehouse cannot relay this session: the API server switched to '${got}', not to the '${asked}' asked for`,
      )
    relayer = await opts.onSwitched(switchedHead(answer.res))
  } catch (e) {
    upstream.destroy()
    throw e
  }
  if (socket.destroyed) {
    upstream.destroy()
    throw new GatewayError('GW_REQUEST_INVALID', 'client went away')
  }
  socket.write(switchedHead(answer.res))
  return { status: 101, closed: relayer(socket, upstream, answer.head, opts.head) }
}
