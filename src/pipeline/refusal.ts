// The one place a refusal becomes a Kubernetes Status on the wire: on a response (HTTP/1.1 or
// HTTP/2), on an upgrade's socket, or on a bare connection the listener could not parse. Every
// Status carries the request id (the Status's details and the Audit-ID header) that its audit
// record has; the pipeline, the listener and the gateway all call this.
import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { rawStatusResponse, toKubeStatus, type GatewayError } from '../errors/index.ts'
import { warningValue } from '../upstream/headers.ts'

/** Where the refusal goes: a response, or a socket (an upgrade, a connection). */
export type RefusalTarget =
  { res: ServerResponse; socket?: undefined } | { res?: undefined; socket: Duplex }

/**
 * Writes the Status of `err` for request `id`. A response whose head already went out cannot
 * carry a Status any more: it is cut. A client that went away gets nothing.
 */
export function sendRefusal(
  target: RefusalTarget,
  id: string,
  err: GatewayError,
  warnings: readonly string[] = [],
): void {
  if (err.code === 'GW_CLIENT_CLOSED') return
  const status = toKubeStatus(err, id)
  const retryAfter = err.retryAfterSeconds ? String(err.retryAfterSeconds) : undefined
  if (target.res) {
    const res = target.res
    if (res.headersSent) {
      res.destroy()
      return
    }
    const body = JSON.stringify(status)
    const headers: Record<string, string | string[] | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'audit-id': id,
      ...(warnings.length ? { warning: warnings.map(warningValue) } : {}),
      ...(err.status === 401 ? { 'www-authenticate': 'Bearer realm="gatehouse"' } : {}),
      ...(retryAfter ? { 'retry-after': retryAfter } : {}),
    }
    res.writeHead(err.status, headers)
    res.end(body)
    return
  }
  const socket = target.socket
  if (socket.writable)
    socket.end(
      rawStatusResponse(status, {
        'Audit-ID': id,
        ...(retryAfter ? { 'Retry-After': retryAfter } : {}),
      }),
    )
  else socket.destroy()
}
