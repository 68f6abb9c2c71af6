// exec/attach over SPDY/3.1, as the kubelet serves it (k8s.io/apimachinery httpstream/spdy
// and kubelet/server/remotecommand): the client opens one stream per role, named by the
// `streamtype` header (error, stdin, stdout, stderr, resize); v4 reports the exit as a JSON
// Status on the error stream. Built on Gatehouse's own SPDY module.
import { appendFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { SpdySession, type SpdyStream } from '../spdy/session.ts'
import { CommandSession, exitStatus, type ExecOptions } from './remote-command.ts'

/** Newest first, as the kubelet prefers them. */
export const REMOTE_COMMAND_SPDY_PROTOCOLS = [
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
] as const

/** The kubelet gives the client this long to open every stream it announced. */
const STREAM_CREATION_TIMEOUT_MS = 30_000
/** After GOAWAY, the client normally hangs up itself; this bounds how long we wait. */
const CLOSE_GRACE_MS = 10_000

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1'
}

/** The client's X-Stream-Protocol-Version list, whether sent as repeated headers or comma-joined. */
export function offeredStreamProtocols(req: IncomingMessage): string[] {
  return (req.headersDistinct['x-stream-protocol-version'] ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)
}

/** What one SPDY session brought to the kubelet, for tests of what may never reach it. */
export interface SpdyArrivals {
  path: string
  /** SYN_STREAMs received: stream id and compressed header block size. */
  synStreams: { streamId: number; headerBlockBytes: number }[]
  dataBytes: number
  /** What the kubelet's own SPDY endpoint refused, if anything. */
  protocolError?: string
}

let arrivalsLog: string | undefined

/** Every SPDY session's arrivals go to this JSON-lines file when it closes. */
export function logSpdyArrivals(path: string | undefined): void {
  arrivalsLog = path
}

/** Answer 101 with the chosen protocol and hand back a SPDY server session on the socket. */
export function acceptSpdy(socket: Duplex, head: Buffer, protocol: string, path = ''): SpdySession {
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  )
  const arrivals: SpdyArrivals = { path, synStreams: [], dataBytes: 0 }
  const session = new SpdySession(socket, {
    role: 'server',
    onFrame(f, direction) {
      if (direction !== 'in') return
      if (f.type === 'syn_stream')
        arrivals.synStreams.push({ streamId: f.streamId, headerBlockBytes: f.headerBlock.length })
      else if (f.type === 'data') arrivals.dataBytes += f.data.length
    },
  })
  session.on('protocolError', (e) => (arrivals.protocolError ??= e.message))
  session.on('close', () => {
    if (arrivalsLog) appendFileSync(arrivalsLog, JSON.stringify(arrivals) + '\n')
  })
  if (head.length > 0) socket.unshift(head)
  return session
}

export function rejectNegotiation(
  socket: Duplex,
  offered: string[],
  supported: readonly string[],
): void {
  const text = `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${supported.join(' ')}]`
  socket.end(
    `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  )
}

/** Concatenated JSON resize messages, as json.Decoder reads them: {"Width":80,"Height":24}{...} */
function resizeReader(onSize: (width: number, height: number) => void): (chunk: Buffer) => void {
  let buffered = ''
  return (chunk) => {
    buffered += chunk.toString('utf8')
    let end: number
    while ((end = buffered.indexOf('}')) >= 0) {
      const text = buffered.slice(0, end + 1)
      buffered = buffered.slice(end + 1)
      try {
        const { Width, Height } = JSON.parse(text) as { Width: number; Height: number }
        onSize(Width, Height)
      } catch {
        /* a malformed resize is ignored, as the kubelet does */
      }
    }
  }
}

export function serveSpdyCommand(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: ExecOptions,
  argv: string[],
  env: Record<string, string>,
): void {
  const offered = offeredStreamProtocols(req)
  const protocol = offered.find((p) =>
    (REMOTE_COMMAND_SPDY_PROTOCOLS as readonly string[]).includes(p),
  )
  if (!protocol) return rejectNegotiation(socket, offered, REMOTE_COMMAND_SPDY_PROTOCOLS)
  const session = acceptSpdy(socket, head, protocol, req.url ?? '')
  const expected = new Set<string>(['error'])
  if (options.stdin) expected.add('stdin')
  if (options.stdout) expected.add('stdout')
  if (options.stderr) expected.add('stderr')
  if (options.tty && protocol !== 'v2.channel.k8s.io' && protocol !== 'channel.k8s.io')
    expected.add('resize')
  const streams = new Map<string, SpdyStream>()
  const command = new CommandSession(options)
  let started = false

  const giveUp = setTimeout(() => session.destroy(), STREAM_CREATION_TIMEOUT_MS)
  session.on('close', () => {
    clearTimeout(giveUp)
    command.clientGone()
  })

  const write = (role: string, data: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const s = streams.get(role)
      if (!s || s.writableEnded || s.destroyed) return resolve()
      s.write(data, () => resolve())
    })
  const end = (s: SpdyStream): Promise<void> =>
    new Promise((resolve) => (s.writableEnded || s.destroyed ? resolve() : s.end(() => resolve())))

  const start = (): void => {
    started = true
    clearTimeout(giveUp)
    void command.run(argv, env, {
      writeStdout: (d) => write('stdout', d),
      writeStderr: (d) => write('stderr', d),
      finish: async (code, args) => {
        const status =
          protocol === 'v4.channel.k8s.io'
            ? Buffer.from(JSON.stringify(exitStatus(code, args)))
            : Buffer.from(code === 0 ? '' : `command terminated with exit code ${code}`)
        if (status.length > 0) await write('error', status)
        await Promise.all([...streams.values()].map(end))
        await session.goAway()
        setTimeout(() => session.destroy(), CLOSE_GRACE_MS).unref()
      },
    })
  }

  session.on('stream', (stream) => {
    stream.on('error', () => undefined)
    const role = stream.header('streamtype') ?? ''
    if (!expected.has(role) || streams.has(role)) return stream.reset()
    streams.set(role, stream)
    void stream.reply().catch(() => undefined)
    if (role === 'stdin') {
      stream.on('data', (d: Buffer) => command.stdin?.write(d))
      stream.on('end', () => command.stdin?.end())
    } else if (role === 'resize') {
      stream.on(
        'data',
        resizeReader((width, height) => command.resize({ width, height })),
      )
    } else {
      stream.resume() // nothing is sent on output streams; drain so their FIN is seen
    }
    if (!started && [...expected].every((r) => streams.has(r))) start()
  })
}
