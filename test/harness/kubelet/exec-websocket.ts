// exec/attach over WebSocket, as the kubelet serves it (k8s.io/apimachinery wsstream):
// every binary message starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error,
// 4 resize); base64 protocols send text messages with an ASCII channel digit; v5 adds the
// close message [255, channel] that half-closes one stream (kubernetes #89899).
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { PORT_FORWARD_WS_PROTOCOL } from './portforward.ts'
import { CommandSession, exitStatus, type ExecOptions } from './remote-command.ts'

/** In preference order of the server; the client's order decides among them. */
export const REMOTE_COMMAND_WS_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'base64.channel.k8s.io',
  'channel.k8s.io',
] as const

const STDIN = 0
const STDOUT = 1
const STDERR = 2
const ERROR = 3
const RESIZE = 4
const CLOSE = 255
/** How long the fake "container runtime" takes to start an exec'd process. */
const RUNTIME_START_MS = 100

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  handleProtocols: (offered) => {
    for (const p of offered) {
      if ((REMOTE_COMMAND_WS_PROTOCOLS as readonly string[]).includes(p)) return p
      if (p === PORT_FORWARD_WS_ALIAS) return PORT_FORWARD_WS_PROTOCOL
    }
    return false
  },
})

/**
 * `SPDY/3.1+portforward.k8s.io` is not an RFC 7230 token ('/' is a separator), and the ws
 * library refuses such a Sec-WebSocket-Protocol header with 400 "Invalid Sec-WebSocket-Protocol
 * header", where the real kubelet (Go) accepts it. The offer is renamed for ws's parser and the
 * real name is answered, so kubectl >= 1.31 really tunnels port-forward over WebSocket here
 * instead of silently falling back to SPDY.
 */
const PORT_FORWARD_WS_ALIAS = 'gatehouse-test-spdy-portforward'

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'websocket'
}

export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<WebSocket> {
  const offered = req.headers['sec-websocket-protocol']
  if (offered?.includes(PORT_FORWARD_WS_PROTOCOL))
    req.headers['sec-websocket-protocol'] = offered.replace(
      PORT_FORWARD_WS_PROTOCOL,
      PORT_FORWARD_WS_ALIAS,
    )
  return new Promise((resolve) => wss.handleUpgrade(req, socket, head, resolve))
}

function send(ws: WebSocket, base64: boolean, channel: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return resolve()
    const frame = base64
      ? String.fromCharCode(48 + channel) + data.toString('base64')
      : Buffer.concat([Buffer.of(channel), data])
    ws.send(frame, { binary: !base64 }, (err) => (err ? reject(err) : resolve()))
  })
}

export function serveWebSocketCommand(
  ws: WebSocket,
  options: ExecOptions,
  argv: string[],
  env: Record<string, string>,
): void {
  const protocol = ws.protocol
  const base64 = protocol.includes('base64')
  const session = new CommandSession(options)
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let channel: number
    let payload: Buffer
    if (base64 && !isBinary) {
      const text = raw.toString('latin1')
      channel = text.charCodeAt(0) - 48
      payload = Buffer.from(text.slice(1), 'base64')
    } else {
      channel = raw[0] ?? -1
      payload = raw.subarray(1)
    }
    if (channel === STDIN) session.stdin?.write(payload)
    else if (channel === RESIZE) {
      try {
        const { Width, Height } = JSON.parse(payload.toString('utf8')) as {
          Width: number
          Height: number
        }
        session.resize({ width: Width, height: Height })
      } catch {
        /* a malformed resize is ignored, as the kubelet does */
      }
    } else if (channel === CLOSE && protocol === 'v5.channel.k8s.io' && payload[0] === STDIN) {
      session.stdin?.end()
    }
  })
  ws.on('close', () => session.clientGone())
  ws.on('error', () => session.clientGone())
  // wsstream tells the client the connection is ready with an empty frame on the lowest
  // writable channel.
  const first = options.stdout ? STDOUT : options.stderr ? STDERR : ERROR
  void send(ws, base64, first, Buffer.alloc(0)).catch(() => undefined)
  // client-go's WebSocket executor starts reading frames before it has created its streams, and
  // discards output that arrives in between ("Unknown stream id 1, discarding message"). A real
  // kubelet never wins that race: starting a process through the container runtime takes far
  // longer. This fake starts instantly, so its first output waits as long as a runtime would.
  const started = new Promise((r) => setTimeout(r, RUNTIME_START_MS))
  void session.run(argv, env, {
    writeStdout: (d) => started.then(() => send(ws, base64, STDOUT, d)),
    writeStderr: (d) => started.then(() => send(ws, base64, STDERR, d)),
    finish: async (code, args) => {
      await started
      const status =
        protocol === 'channel.k8s.io' || protocol === 'base64.channel.k8s.io'
          ? Buffer.from(code === 0 ? '' : `command terminated with exit code ${code}`)
          : Buffer.from(JSON.stringify(exitStatus(code, args)))
      if (status.length > 0) await send(ws, base64, ERROR, status).catch(() => undefined)
      ws.close(1000)
    },
  })
}
