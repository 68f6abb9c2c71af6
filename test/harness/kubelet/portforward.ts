// port-forward as the kubelet serves it: over SPDY/3.1 (streams paired by `requestid`, one
// `error` and one `data` stream per connection, `port` naming the container port), and the
// same SPDY carried inside WebSocket binary messages (kubectl >= 1.31,
// subprotocol SPDY/3.1+portforward.k8s.io). Behind every port the fake container runs an
// echo server, so tests can check bytes travel both ways.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createWebSocketStream, type WebSocket } from 'ws'
import { SpdySession, type SpdyStream } from '../spdy/session.ts'
import { acceptSpdy, offeredStreamProtocols, rejectNegotiation } from './exec-spdy.ts'
import type { PodView } from './pods.ts'

export const PORT_FORWARD_SPDY_PROTOCOL = 'portforward.k8s.io'
export const PORT_FORWARD_WS_PROTOCOL = 'SPDY/3.1+portforward.k8s.io'

interface Pair {
  error?: SpdyStream
  data?: SpdyStream
}

function servePortForward(session: SpdySession, pod: PodView): void {
  const pairs = new Map<string, Pair>()
  session.on('stream', (stream) => {
    stream.on('error', () => undefined)
    const type = stream.header('streamtype')
    const requestId = stream.header('requestid') ?? ''
    const port = Number(stream.header('port'))
    if ((type !== 'error' && type !== 'data') || !requestId) return stream.reset()
    const pair = pairs.get(requestId) ?? {}
    if (pair[type]) return stream.reset()
    pair[type] = stream
    pairs.set(requestId, pair)
    void stream.reply().catch(() => undefined)
    if (type === 'error') stream.resume()
    if (!pair.error || !pair.data) return
    pairs.delete(requestId)
    const { error, data } = pair
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      error.end(`invalid port ${stream.header('port')} for pod ${pod.namespace}/${pod.name}`)
      data.end()
      return
    }
    // The echo "container": every byte comes back on the same stream.
    data.pipe(data)
    data.on('end', () => error.end())
  })
}

export function servePortForwardSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  pod: PodView,
): void {
  const offered = offeredStreamProtocols(req)
  if (!offered.includes(PORT_FORWARD_SPDY_PROTOCOL))
    return rejectNegotiation(socket, offered, [PORT_FORWARD_SPDY_PROTOCOL])
  servePortForward(acceptSpdy(socket, head, PORT_FORWARD_SPDY_PROTOCOL), pod)
}

export function servePortForwardWebSocket(ws: WebSocket, pod: PodView): void {
  // SPDY frames ride in binary messages whose boundaries need not match frame boundaries.
  const tunnel = createWebSocketStream(ws, { allowHalfOpen: false })
  tunnel.on('error', () => undefined)
  const session = new SpdySession(tunnel, { role: 'server' })
  session.on('close', () => ws.terminate())
  servePortForward(session, pod)
}
