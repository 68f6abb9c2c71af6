// The session tap: decodes the bytes Gatehouse relays between a client and the API server into
// what happened in the session (stdin, stdout, stderr, resizes, the exit status; port-forward
// connections and their bytes). It only reads: the relay forwards every chunk unchanged, before
// or after the tap sees it. Malformed input throws a TapProtocolError; the relay then ends the
// session (fail closed: Gatehouse does not relay what it cannot record).
//
// It also knows how to speak last: `termination(message)` returns the bytes that end the
// session with a message the client prints, to be sent at a frame boundary of the
// upstream-to-client direction (`upstreamBytesToBoundary`).
import {
  FLAG_FIN,
  FrameParser,
  HeaderDecompressor,
  encodeFrame,
  type SpdyFrame,
  type SpdyHeaders,
} from '../spdy/index.ts'
import {
  Channel,
  exitCodeOf,
  parseResize,
  terminationStatus,
  type Dialect,
  type SessionKind,
} from './remote-command.ts'
import {
  Opcode,
  WebSocketFrameReader,
  closePayload,
  encodeServerFrame,
  type WebSocketMessage,
} from './websocket-frames.ts'

export class TapProtocolError extends Error {
  override readonly name = 'TapProtocolError'
}

export interface TerminalSize {
  width: number
  height: number
}

/** What the tap reports, in the order it happened. */
export interface SessionObserver {
  stdin(data: Buffer): void
  stdout(data: Buffer): void
  stderr(data: Buffer): void
  resize(size: TerminalSize): void
  stdinClosed(): void
  /** The error channel: code 0 for success, the exit code, or -1 with the failure message. */
  exit(code: number, message?: string): void
  portOpened(connection: string, port: number): void
  /** in: client to pod; out: pod to client. */
  portData(connection: string, port: number, direction: 'in' | 'out', data: Buffer): void
  portError(connection: string, port: number, message: string): void
  portClosed(connection: string, port: number): void
}

export interface SessionTap {
  fromClient(chunk: Buffer): void
  fromUpstream(chunk: Buffer): void
  /** Resolves once every event of the bytes fed so far has been reported. */
  settled(): Promise<void>
  /** Bytes the upstream must still send before its current frame ends (0: at a boundary). */
  upstreamBytesToBoundary(): number
  /** What to send the client, at a boundary, to end the session with a message it prints. */
  termination(message: string, reason: string): Buffer
  close(): void
  /** SPDY exec and attach: the streamType of each stream, from the tap's own header decoding. */
  readonly streamTypes?: SpdyStreamTypes | undefined
}

/**
 * The streamType of SPDY streams as the tap decoded it from their SYN_STREAM (whose header blocks
 * only the tap decompresses: a second zlib context would have to see every block, in order).
 */
export interface SpdyStreamTypes {
  /** stdin, stdout, stderr, error, resize; undefined for a stream the tap has not seen open. */
  streamType(streamId: number): string | undefined
  /** While header blocks are being decompressed: resolves once those fed so far are decoded. */
  headersDecoded(): Promise<void> | undefined
}

/** One WebSocket message can hold at most this much (kubelets send 32 KiB or less). */
const MAX_WEBSOCKET_MESSAGE = 16 * 1024 * 1024

/** Clients mask their frames, servers do not (RFC 6455 5.1). */
const clientFrameReader = (): WebSocketFrameReader =>
  new WebSocketFrameReader({ masked: true, maxMessageBytes: MAX_WEBSOCKET_MESSAGE })
const upstreamFrameReader = (): WebSocketFrameReader =>
  new WebSocketFrameReader({ masked: false, maxMessageBytes: MAX_WEBSOCKET_MESSAGE })

export function createTap(
  dialect: Dialect,
  kind: SessionKind,
  observer: SessionObserver,
): SessionTap {
  if (dialect.transport === 'websocket') return new ChannelTap(dialect, kind, observer)
  if (dialect.transport === 'spdy') return new SpdyTap(dialect.version, kind, observer)
  return new SpdyOverWebSocketTap(kind, observer)
}

function wrap<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (e instanceof TapProtocolError) throw e
    throw new TapProtocolError(e instanceof Error ? e.message : String(e))
  }
}

/** WebSocket remote command: channel.k8s.io, base64.channel.k8s.io, v4.*, v5.channel.k8s.io. */
class ChannelTap implements SessionTap {
  readonly #client = clientFrameReader()
  readonly #upstream = upstreamFrameReader()
  readonly #dialect: Extract<Dialect, { transport: 'websocket' }>
  readonly #kind: SessionKind
  readonly #observer: SessionObserver
  /** port-forward over plain channels: the port of each channel, from its first two bytes. */
  readonly #ports = new Map<number, number>()

  constructor(
    dialect: Extract<Dialect, { transport: 'websocket' }>,
    kind: SessionKind,
    observer: SessionObserver,
  ) {
    this.#dialect = dialect
    this.#kind = kind
    this.#observer = observer
  }

  fromClient(chunk: Buffer): void {
    for (const m of wrap(() => this.#client.push(chunk))) this.#message(m, 'client')
  }

  fromUpstream(chunk: Buffer): void {
    for (const m of wrap(() => this.#upstream.push(chunk))) this.#message(m, 'upstream')
  }

  settled(): Promise<void> {
    return Promise.resolve()
  }

  upstreamBytesToBoundary(): number {
    return this.#upstream.bytesToFrameEnd
  }

  #message(m: WebSocketMessage, from: 'client' | 'upstream'): void {
    if (m.opcode !== Opcode.BINARY && m.opcode !== Opcode.TEXT) return
    if (m.data.length === 0) return
    let channel: number
    let data: Buffer
    if (this.#dialect.base64) {
      channel = m.data[0]! - 0x30
      data = Buffer.from(m.data.subarray(1).toString('latin1'), 'base64')
    } else {
      channel = m.data[0]!
      data = m.data.subarray(1)
    }
    if (this.#kind === 'portforward') return this.#portForward(channel, data, from)
    const o = this.#observer
    if (from === 'client') {
      if (channel === Channel.stdin) {
        if (data.length) o.stdin(data)
      } else if (channel === Channel.resize) {
        const size = parseResize(data)
        if (size) o.resize(size)
      } else if (channel === Channel.close && this.#dialect.version >= 5) {
        if (data[0] === Channel.stdin) o.stdinClosed()
      }
      return
    }
    if (channel === Channel.stdout) o.stdout(data)
    else if (channel === Channel.stderr) o.stderr(data)
    else if (channel === Channel.error) {
      const exit = exitCodeOf(data)
      o.exit(exit.code, exit.message)
    }
  }

  #portForward(channel: number, data: Buffer, from: 'client' | 'upstream'): void {
    // channels 2i (data) and 2i+1 (error) serve the i-th port; each starts with the port number
    const o = this.#observer
    const connection = String(channel >> 1)
    let port = this.#ports.get(channel)
    if (port === undefined && from === 'upstream' && data.length >= 2) {
      port = data.readUInt16LE(0)
      this.#ports.set(channel, port)
      if ((channel & 1) === 0) o.portOpened(connection, port)
      data = data.subarray(2)
    }
    if (!data.length || port === undefined) return
    if (channel & 1) o.portError(connection, port, data.toString('utf8'))
    else o.portData(connection, port, from === 'client' ? 'in' : 'out', data)
  }

  termination(message: string, reason: string): Buffer {
    const frames: Buffer[] = []
    if (this.#kind !== 'portforward') {
      const payload =
        this.#dialect.version >= 4 ? terminationStatus(message, reason) : Buffer.from(message)
      frames.push(
        this.#dialect.base64
          ? encodeServerFrame(Opcode.TEXT, Buffer.from('3' + payload.toString('base64')))
          : encodeServerFrame(
              Opcode.BINARY,
              Buffer.concat([Buffer.from([Channel.error]), payload]),
            ),
      )
    }
    frames.push(encodeServerFrame(Opcode.CLOSE, closePayload(1000, message)))
    return Buffer.concat(frames)
  }

  close(): void {}
}

interface SpdyStreamInfo {
  type: string
  port: number
  connection: string
  finFromClient: boolean
  finFromUpstream: boolean
  /** error and resize streams: bytes until the message is complete */
  buffer: Buffer[]
}

/** SPDY/3.1 exec, attach and port-forward: streams named by their streamType header. */
class SpdyTap implements SessionTap, SpdyStreamTypes {
  readonly #parsers = { client: new FrameParser(), upstream: new FrameParser() }
  readonly #headers = { client: new HeaderDecompressor(), upstream: new HeaderDecompressor() }
  readonly #streams = new Map<number, SpdyStreamInfo>()
  /** exec and attach: every stream's type, kept after it ends (a handful per session). */
  readonly #types = new Map<number, string>()
  readonly #version: number
  readonly #kind: SessionKind
  readonly #observer: SessionObserver
  /** Frames wait here while a header block before them is being decompressed (in order). */
  #queue: Promise<void> = Promise.resolve()
  #pending = 0
  #failure: TapProtocolError | undefined
  #exitReported = false

  constructor(version: number, kind: SessionKind, observer: SessionObserver) {
    this.#version = version
    this.#kind = kind
    this.#observer = observer
  }

  fromClient(chunk: Buffer): void {
    this.#frames(
      wrap(() => this.#parsers.client.push(chunk)),
      'client',
    )
  }

  fromUpstream(chunk: Buffer): void {
    this.#frames(
      wrap(() => this.#parsers.upstream.push(chunk)),
      'upstream',
    )
  }

  /** Frames of both directions in one order: a stream's data is never seen before its headers. */
  #frames(frames: SpdyFrame[], from: 'client' | 'upstream'): void {
    if (this.#failure) throw this.#failure
    for (const f of frames) {
      if (
        this.#pending === 0 &&
        f.type !== 'syn_stream' &&
        f.type !== 'syn_reply' &&
        f.type !== 'headers'
      ) {
        this.#frame(f, from, undefined)
        continue
      }
      this.#pending++
      const decoded =
        f.type === 'syn_stream' || f.type === 'syn_reply' || f.type === 'headers'
          ? this.#headers[from].decompress(f.headerBlock)
          : Promise.resolve(undefined)
      this.#queue = this.#queue.then(async () => {
        try {
          const headers = await decoded
          if (!this.#failure) this.#frame(f, from, headers)
        } catch (e) {
          this.#failure ??= new TapProtocolError(e instanceof Error ? e.message : String(e))
        } finally {
          this.#pending--
        }
      })
      // the decompressor rejects on corrupt input; keep the rejection inside the queue
      decoded.catch(() => undefined)
    }
  }

  async settled(): Promise<void> {
    await this.#queue
    if (this.#failure) throw this.#failure
  }

  get streamTypes(): SpdyStreamTypes | undefined {
    return this.#kind === 'portforward' ? undefined : this
  }

  streamType(streamId: number): string | undefined {
    return this.#types.get(streamId)
  }

  headersDecoded(): Promise<void> | undefined {
    return this.#pending > 0 ? this.#queue : undefined
  }

  #frame(f: SpdyFrame, from: 'client' | 'upstream', headers: SpdyHeaders | undefined): void {
    const o = this.#observer
    if (f.type === 'syn_stream' && headers) {
      const one = (name: string): string => headers.get(name)?.[0] ?? ''
      const info: SpdyStreamInfo = {
        type: one('streamtype'),
        port: Number(one('port')) || 0,
        connection: one('requestid') || String(f.streamId),
        finFromClient: false,
        finFromUpstream: false,
        buffer: [],
      }
      this.#streams.set(f.streamId, info)
      if (this.#kind !== 'portforward') this.#types.set(f.streamId, info.type)
      if (this.#kind === 'portforward' && info.type === 'data')
        o.portOpened(info.connection, info.port)
      if (f.flags & FLAG_FIN) this.#fin(f.streamId, info, from)
      return
    }
    if (f.type === 'rst_stream') {
      const info = this.#streams.get(f.streamId)
      if (info) this.#ended(f.streamId, info)
      return
    }
    if (f.type !== 'data') return
    const info = this.#streams.get(f.streamId)
    if (!info) return
    const data = f.data
    if (data.length) {
      if (this.#kind === 'portforward') {
        if (info.type === 'data')
          o.portData(info.connection, info.port, from === 'client' ? 'in' : 'out', data)
        else if (info.type === 'error' && from === 'upstream') info.buffer.push(data)
      } else if (from === 'client' && info.type === 'stdin') o.stdin(data)
      else if (from === 'client' && info.type === 'resize') this.#resize(info, data)
      else if (from === 'upstream' && info.type === 'stdout') o.stdout(data)
      else if (from === 'upstream' && info.type === 'stderr') o.stderr(data)
      else if (from === 'upstream' && info.type === 'error') info.buffer.push(data)
    }
    if (f.flags & FLAG_FIN) this.#fin(f.streamId, info, from)
  }

  #resize(info: SpdyStreamInfo, data: Buffer): void {
    // client-go writes one JSON object per line (json.Encoder)
    info.buffer.push(data)
    let text = Buffer.concat(info.buffer).toString('utf8')
    let nl: number
    while ((nl = text.indexOf('\n')) >= 0) {
      const size = parseResize(Buffer.from(text.slice(0, nl)))
      if (size) this.#observer.resize(size)
      text = text.slice(nl + 1)
    }
    info.buffer = text ? [Buffer.from(text)] : []
  }

  #fin(id: number, info: SpdyStreamInfo, from: 'client' | 'upstream'): void {
    if (from === 'client') info.finFromClient = true
    else info.finFromUpstream = true
    if (from === 'client' && info.type === 'stdin') this.#observer.stdinClosed()
    if (from === 'upstream' && info.type === 'error') this.#errorMessage(info)
    if (info.finFromClient && info.finFromUpstream) this.#ended(id, info)
  }

  #errorMessage(info: SpdyStreamInfo): void {
    const message = Buffer.concat(info.buffer)
    info.buffer = []
    if (this.#kind === 'portforward') {
      if (message.length)
        this.#observer.portError(info.connection, info.port, message.toString('utf8'))
      return
    }
    if (this.#exitReported) return
    this.#exitReported = true
    const exit = exitCodeOf(message)
    this.#observer.exit(exit.code, exit.message)
  }

  #ended(id: number, info: SpdyStreamInfo): void {
    this.#streams.delete(id)
    if (info.type === 'error' && info.buffer.length) this.#errorMessage(info)
    if (this.#kind === 'portforward' && info.type === 'data')
      this.#observer.portClosed(info.connection, info.port)
  }

  upstreamBytesToBoundary(): number {
    return this.#parsers.upstream.bytesToFrameEnd
  }

  /** Whether no frame is half-read in the upstream-to-client direction (for nested framing). */
  atUpstreamBoundary(): boolean {
    return this.#parsers.upstream.pendingBytes === 0
  }

  termination(message: string, reason: string): Buffer {
    const frames: Buffer[] = []
    const payload =
      this.#kind !== 'portforward' && this.#version >= 4
        ? terminationStatus(message, reason)
        : Buffer.from(message)
    for (const [streamId, info] of this.#streams) {
      if (info.finFromUpstream) continue
      if (info.type === 'error')
        frames.push(encodeFrame({ type: 'data', streamId, flags: FLAG_FIN, data: payload }))
      else if (info.type === 'stdout' || info.type === 'stderr' || info.type === 'data')
        frames.push(encodeFrame({ type: 'data', streamId, flags: FLAG_FIN, data: Buffer.alloc(0) }))
    }
    return Buffer.concat(frames)
  }

  close(): void {
    this.#headers.client.close()
    this.#headers.upstream.close()
  }
}

/** kubectl >= 1.31 port-forward: SPDY frames carried in binary WebSocket messages. */
class SpdyOverWebSocketTap implements SessionTap {
  readonly #client = clientFrameReader()
  readonly #upstream = upstreamFrameReader()
  readonly #spdy: SpdyTap

  constructor(kind: SessionKind, observer: SessionObserver) {
    this.#spdy = new SpdyTap(1, kind, observer)
  }

  fromClient(chunk: Buffer): void {
    for (const m of wrap(() => this.#client.push(chunk)))
      if (m.opcode === Opcode.BINARY) this.#spdy.fromClient(m.data)
  }

  fromUpstream(chunk: Buffer): void {
    for (const m of wrap(() => this.#upstream.push(chunk)))
      if (m.opcode === Opcode.BINARY) this.#spdy.fromUpstream(m.data)
  }

  settled(): Promise<void> {
    return this.#spdy.settled()
  }

  upstreamBytesToBoundary(): number {
    return this.#upstream.bytesToFrameEnd
  }

  termination(message: string, reason: string): Buffer {
    const frames: Buffer[] = []
    if (this.#spdy.atUpstreamBoundary()) {
      const inner = this.#spdy.termination(message, reason)
      if (inner.length) frames.push(encodeServerFrame(Opcode.BINARY, inner))
    }
    frames.push(encodeServerFrame(Opcode.CLOSE, closePayload(1000, message)))
    return Buffer.concat(frames)
  }

  close(): void {
    this.#spdy.close()
  }
}
