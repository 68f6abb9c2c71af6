// Refusals as Kubernetes metav1.Status objects: kubectl prints `Error from server (Reason): message`
// only when the Status code equals the HTTP status (otherwise it prints "unknown").
import type { GatewayError } from './gateway-error.ts'

export interface KubeStatus {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure'
  message: string
  reason: string
  code: number
  details?: { causes?: { reason: string; message: string }[]; retryAfterSeconds?: number }
}

export function toKubeStatus(err: GatewayError, requestId?: string): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: requestId ? `${err.message} (gatehouse request id ${requestId})` : err.message,
    reason: err.reason,
    code: err.status,
    ...(err.retryAfterSeconds ? { details: { retryAfterSeconds: err.retryAfterSeconds } } : {}),
  }
}

/** A complete HTTP/1.1 response carrying a Status, for sockets that were never given a response object (upgrades, client errors). */
export function rawStatusResponse(
  status: KubeStatus,
  extraHeaders: Record<string, string> = {},
): string {
  const body = JSON.stringify(status)
  const head = [
    `HTTP/1.1 ${status.code} ${status.reason}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`),
  ]
  return `${head.join('\r\n')}\r\n\r\n${body}`
}
