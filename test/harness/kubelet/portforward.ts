// placeholder until src/spdy lands
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { PodView } from './pods.ts'
export const PORT_FORWARD_WS_PROTOCOL = 'SPDY/3.1+portforward.k8s.io'
export function servePortForwardSpdy(
  _r: IncomingMessage,
  socket: Duplex,
  _h: Buffer,
  _p: PodView,
): void {
  socket.destroy()
}
export function servePortForwardWebSocket(ws: WebSocket, _p: PodView): void {
  ws.close()
}
