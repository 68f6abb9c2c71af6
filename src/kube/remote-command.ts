// Kubernetes remote command and port-forward knowledge the session tap needs: which dialect a
// session speaks (from the upgrade response), what each channel or stream carries, how the exit
// status is encoded, and how Gatehouse phrases a termination so that kubectl prints it.
// Sources: k8s.io/apimachinery/pkg/util/remotecommand, k8s.io/client-go/tools/remotecommand,
// k8s.io/apiserver/pkg/util/wsstream.

/** What the session is: exec and attach carry terminal streams; port-forward carries TCP. */
export type SessionKind = 'exec' | 'attach' | 'portforward'

export type Dialect =
  /** WebSocket channels: one byte (or one ASCII digit in base64 dialects) of channel per message. */
  | { transport: 'websocket'; subprotocol: string; base64: boolean; version: 1 | 4 | 5 }
  /** SPDY/3.1 streams named by a `streamType` header; version from X-Stream-Protocol-Version. */
  | { transport: 'spdy'; subprotocol: string; version: number }
  /** kubectl >= 1.31 port-forward: SPDY/3.1 frames inside binary WebSocket messages. */
  | { transport: 'spdy-over-websocket'; subprotocol: string; version: number }

export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const

/** The dialect of an upgraded session from the API server's 101 response, or why not known. */
export function dialectOf(responseHead: string): Dialect | { unknown: string } {
  const header = (name: string): string | undefined => {
    const m = new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'im').exec(responseHead)
    return m?.[1]
  }
  const upgrade = (header('upgrade') ?? '').toLowerCase()
  if (upgrade === 'websocket') {
    const sub = header('sec-websocket-protocol') ?? ''
    if (sub === 'SPDY/3.1+portforward.k8s.io')
      return { transport: 'spdy-over-websocket', subprotocol: sub, version: 1 }
    if (header('sec-websocket-extensions'))
      return {
        unknown: `a WebSocket extension was negotiated (${header('sec-websocket-extensions')})`,
      }
    const known: Record<string, { base64: boolean; version: 1 | 4 | 5 }> = {
      '': { base64: false, version: 1 },
      'channel.k8s.io': { base64: false, version: 1 },
      'base64.channel.k8s.io': { base64: true, version: 1 },
      'v4.channel.k8s.io': { base64: false, version: 4 },
      'v4.base64.channel.k8s.io': { base64: true, version: 4 },
      'v5.channel.k8s.io': { base64: false, version: 5 },
      // port-forward over WebSocket without SPDY (browser clients): the same channel framing
      'portforward.k8s.io': { base64: false, version: 1 },
    }
    const k = known[sub]
    if (!k) return { unknown: `WebSocket subprotocol '${sub}'` }
    return { transport: 'websocket', subprotocol: sub || 'channel.k8s.io', ...k }
  }
  if (upgrade === 'spdy/3.1') {
    const sub = header('x-stream-protocol-version') ?? ''
    const m = /^v(\d+)\.channel\.k8s\.io$/.exec(sub)
    const version = m ? Number(m[1]) : 1
    return { transport: 'spdy', subprotocol: sub || 'channel.k8s.io', version }
  }
  return { unknown: `upgrade '${upgrade}'` }
}

/** The exit code in an error-channel message: a Status in v2+ dialects, plain text in v1. */
export function exitCodeOf(message: Buffer): { code: number; message?: string } {
  const text = message.toString('utf8')
  try {
    const status = JSON.parse(text) as {
      status?: string
      reason?: string
      message?: string
      details?: { causes?: { reason?: string; message?: string }[] }
    }
    if (status.status === 'Success') return { code: 0 }
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
    if (status.reason === 'NonZeroExitCode' && cause?.message && /^\d+$/.test(cause.message))
      return { code: Number(cause.message) }
    return { code: -1, ...(status.message ? { message: status.message } : {}) }
  } catch {
    return text === '' ? { code: 0 } : { code: -1, message: text }
  }
}

/** A failure Status for the error channel; kubectl prints its message and exits non-zero. */
export function terminationStatus(message: string, reason: string, code = 403): Buffer {
  return Buffer.from(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    }),
  )
}

/** A resize message ({"Width":w,"Height":h}) → size, or undefined when malformed. */
export function parseResize(data: Buffer): { width: number; height: number } | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as { Width?: unknown; Height?: unknown }
    if (typeof v.Width === 'number' && typeof v.Height === 'number')
      return { width: v.Width, height: v.Height }
  } catch {
    // not JSON: ignored, as the kubelet ignores it
  }
  return undefined
}

/** port-forward: the ports asked for, in order (repeated or comma-joined, as the kubelet reads them). */
export function portsOf(query: URLSearchParams): number[] {
  return query
    .getAll('ports')
    .flatMap((p) => p.split(','))
    .map((p) => Number(p.trim()))
}

/** exec query parameters: the command (argv), container, tty and stdin, as the kubelet reads them. */
export interface ExecParameters {
  command: string[]
  container: string
  tty: boolean
  stdin: boolean
  stdout: boolean
  stderr: boolean
}

export function execParameters(query: URLSearchParams): ExecParameters {
  const flag = (name: string): boolean => {
    const v = query.get(name)
    return v === 'true' || v === '1'
  }
  return {
    command: query.getAll('command'),
    container: query.get('container') ?? '',
    tty: flag('tty'),
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr'),
  }
}

/** exec and attach requests: the parameters policy rules match on; undefined for others. */
export function execRequestFor(info: {
  isResourceRequest: boolean
  apiGroup: string
  resource: string
  subresource: string
  query: URLSearchParams
}): ExecParameters | undefined {
  if (
    !info.isResourceRequest ||
    info.apiGroup !== '' ||
    info.resource !== 'pods' ||
    (info.subresource !== 'exec' && info.subresource !== 'attach')
  )
    return undefined
  return execParameters(info.query)
}
