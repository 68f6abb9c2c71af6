// The session tap: decodes the bytes Gatehouse relays between a client and the API server into
// what happened in the session (stdin, stdout, stderr, resizes, the exit status; port-forward
// connections and their bytes). It only reads: the relay forwards every chunk unchanged, after
// the tap has read it whole (`clientPendingBytes`: what is not yet a whole frame waits).
// Malformed input throws a TapProtocolError; the relay then ends the session (fail closed:
// Gatehouse does not relay what it cannot record). So does a client frame or stream the tap
// cannot attribute: a message on a channel that carries nothing to the container, a SPDY stream
// id used twice or out of order, a stream type the session does not have, DATA on a stream never
// opened. SPDY header blocks are decoded synchronously, within limits, before their frame moves.
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
  portsOf,
  terminationStatus,
  type Dialect,
  type SessionKind,
} from '../kube/remote-command.ts'
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
  /**
   * Client bytes fed that do not make a whole frame yet (a WebSocket message: its last
   * fragment), counted from the end: the relay forwards everything before them.
   */
  clientPendingBytes(): number
  /** Resolves once every event of the bytes fed so far has been reported. */
  settled(): Promise<void>
  /** Bytes the upstream must still send before its current frame ends (0: at a boundary). */
  upstreamBytesToBoundary(): number
  /**
   * What to send the client, at a boundary, to end the session with a message it prints;
   * `protocolError`: the client broke the protocol (a Status 400, a WebSocket close 1002).
   */
  termination(message: string, reason: string, protocolError?: boolean): Buffer
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
  /**
   * While header blocks are being decompressed: resolves once those fed so far are decoded.
   * The tap decodes synchronously, so this is always undefined; kept for the rewriter.
   */
  headersDecoded(): Promise<void> | undefined
}

/** One WebSocket message can hold at most this much (kubelets send 32 KiB or less). */
const MAX_WEBSOCKET_MESSAGE = 16 * 1024 * 1024
/**
 * SPDY header blocks as the tap accepts them. Kubernetes sends one to three short headers per
 * stream (streamtype, port, requestid): anything near these bounds is not a Kubernetes client.
 */
const TAP_HEADER_LIMITS = { maxHeaderBlockBytes: 16 * 1024, maxHeaders: 32, maxRatio: 100 }
/** A resize message is a line of JSON ({"Width":80,"Height":24}); longer ones end the session. */
const MAX_RESIZE_LINE = 4096
/** An error stream's message (the exit Status) is kept up to this size. */
const MAX_ERROR_MESSAGE = 64 * 1024
/** Ended SPDY streams remembered (a client may still send on one the upstream reset). */
const MAX_ENDED_STREAMS = 1024

/** Clients mask their frames, servers do not (RFC 6455 5.1). */
const clientFrameReader = (): WebSocketFrameReader =>
  new WebSocketFrameReader({ masked: true, maxMessageBytes: MAX_WEBSOCKET_MESSAGE })
const upstreamFrameReader = (): WebSocketFrameReader =>
  new WebSocketFrameReader({ masked: false, maxMessageBytes: MAX_WEBSOCKET_MESSAGE })

/** `query`: the request's query (port-forward over plain channels: the ports, in order). */
export function createTap(
  dialect: Dialect,
  kind: SessionKind,
  observer: SessionObserver,
  query: URLSearchParams = new URLSearchParams(),
): SessionTap {
  if (dialect.transport === 'websocket')
    return new ChannelTap(dialect, kind, observer, portsOf(query))
  if (dialect.transport === 'spdy') return new SpdyTap(dialect.version, kind, observer)
  return new SpdyOverWebSocketTap(kind, observer)
}

const refuse = (message: string): never => {
  throw new TapProtocolError(message)
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
  /** port-forward over plain channels: the ports asked for; channels 2i and 2i+1 serve the i-th. */
  readonly #asked: number[]
  /** port-forward: the port each channel's preamble (its first two bytes from upstream) named. */
  readonly #opened = new Map<number, number>()

  constructor(
    dialect: Extract<Dialect, { transport: 'websocket' }>,
    kind: SessionKind,
    observer: SessionObserver,
    ports: number[],
  ) {
    this.#dialect = dialect
    this.#kind = kind
    this.#observer = observer
    this.#asked = ports
  }

  fromClient(chunk: Buffer): void {
    for (const m of wrap(() => this.#client.push(chunk))) this.#message(m, 'client')
  }

  fromUpstream(chunk: Buffer): void {
    for (const m of wrap(() => this.#upstream.push(chunk))) this.#message(m, 'upstream')
  }

  clientPendingBytes(): number {
    return this.#client.pendingBytes
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
      } else refuse(`client message on channel ${channel}, which carries nothing to the container`)
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
    const o = this.#observer
    const index = channel >> 1
    const connection = String(index)
    if (from === 'client') {
      // the kubelet writes what the client sends on data channel 2i to the i-th port asked for,
      // whether or not it has sent its port preamble yet: record it under that port
      const port = this.#asked[index]
      if ((channel & 1) === 1 || port === undefined || !Number.isInteger(port))
        refuse(`client message on channel ${channel}, which is no port's data channel`)
      if (data.length) o.portData(connection, port!, 'in', data)
      return
    }
    if (!this.#opened.has(channel) && data.length >= 2) {
      const port = data.readUInt16LE(0)
      this.#opened.set(channel, port)
      if ((channel & 1) === 0) o.portOpened(connection, port)
      data = data.subarray(2)
    }
    const port = this.#opened.get(channel) ?? this.#asked[index]
    if (!data.length || port === undefined) return
    if (channel & 1) o.portError(connection, port, data.toString('utf8'))
    else o.portData(connection, port, 'out', data)
  }

  termination(message: string, reason: string, protocolError = false): Buffer {
    const frames: Buffer[] = []
    if (this.#kind !== 'portforward') {
      const payload =
        this.#dialect.version >= 4
          ? protocolError
            ? terminationStatus(message, 'BadRequest', 400)
            : terminationStatus(message, reason)
          : Buffer.from(message)
      frames.push(
        this.#dialect.base64
          ? encodeServerFrame(Opcode.TEXT, Buffer.from('3' + payload.toString('base64')))
          : encodeServerFrame(
              Opcode.BINARY,
              Buffer.concat([Buffer.from([Channel.error]), payload]),
            ),
      )
    }
    frames.push(encodeServerFrame(Opcode.CLOSE, closePayload(protocolError ? 1002 : 1000, message)))
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
  bufferBytes: number
}

/** The stream types each kind of session has (k8s.io/api/core/v1 StreamType*). */
const STREAM_TYPES: Record<SessionKind, ReadonlySet<string>> = {
  exec: new Set(['stdin', 'stdout', 'stderr', 'error', 'resize']),
  attach: new Set(['stdin', 'stdout', 'stderr', 'error', 'resize']),
  portforward: new Set(['data', 'error']),
}

/**
 * SPDY/3.1 exec, attach and port-forward: streams named by their streamType header. Kubernetes
 * clients open every stream (odd ids, increasing: SPDY 3.1 section 2.3.2); the server only
 * replies. A header block is decoded when its frame is read, before the relay moves it.
 */
class SpdyTap implements SessionTap, SpdyStreamTypes {
  readonly #parsers = {
    client: new FrameParser({ maxControlFramePayload: TAP_HEADER_LIMITS.maxHeaderBlockBytes + 10 }),
    upstream: new FrameParser(),
  }
  readonly #headers = {
    client: new HeaderDecompressor(TAP_HEADER_LIMITS),
    upstream: new HeaderDecompressor(),
  }
  /** Open streams. */
  readonly #streams = new Map<number, SpdyStreamInfo>()
  /** Streams that ended, newest last (bounded): a client may still write to one reset upstream. */
  readonly #ended = new Map<number, SpdyStreamInfo>()
  /** exec and attach: every stream's type, kept after it ends (a handful per session). */
  readonly #types = new Map<number, string>()
  readonly #version: number
  readonly #kind: SessionKind
  readonly #observer: SessionObserver
  #lastClientStream = 0
  #exitReported = false

  constructor(version: number, kind: SessionKind, observer: SessionObserver) {
    this.#version = version
    this.#kind = kind
    this.#observer = observer
  }

  fromClient(chunk: Buffer): void {
    for (const f of wrap(() => this.#parsers.client.push(chunk))) wrap(() => this.#client(f))
  }

  fromUpstream(chunk: Buffer): void {
    for (const f of wrap(() => this.#parsers.upstream.push(chunk))) wrap(() => this.#upstream(f))
  }

  clientPendingBytes(): number {
    return this.#parsers.client.pendingBytes
  }

  settled(): Promise<void> {
    return Promise.resolve()
  }

  get streamTypes(): SpdyStreamTypes | undefined {
    return this.#kind === 'portforward' ? undefined : this
  }

  streamType(streamId: number): string | undefined {
    return this.#types.get(streamId)
  }

  headersDecoded(): Promise<void> | undefined {
    return undefined
  }

  #client(f: SpdyFrame): void {
    switch (f.type) {
      case 'syn_stream':
        return this.#open(f.streamId, f.flags, this.#headers.client.decompress(f.headerBlock))
      case 'headers': {
        this.#headers.client.decompress(f.headerBlock)
        const info = this.#streams.get(f.streamId)
        if (!info) refuse(`HEADERS for stream ${f.streamId}, which is not open`)
        if (f.flags & FLAG_FIN) this.#fin(f.streamId, info!, 'client')
        return
      }
      case 'data':
        return this.#clientData(f.streamId, f.flags, f.data)
      case 'rst_stream': {
        const info = this.#streams.get(f.streamId)
        if (info) {
          info.finFromClient = true
          this.#end(f.streamId, info)
        }
        return
      }
      case 'syn_reply':
        // the server opens no streams, so a client has nothing to reply to
        return refuse(`SYN_REPLY for stream ${f.streamId}, which the server never opened`)
      case 'unknown':
        return refuse(`unknown control frame type ${f.controlType}`)
      case 'settings':
      case 'ping':
      case 'goaway':
      case 'window_update':
        return
    }
  }

  #open(id: number, flags: number, headers: SpdyHeaders): void {
    if (id % 2 === 0 || id <= this.#lastClientStream)
      refuse(
        `SYN_STREAM with stream id ${id} after ${this.#lastClientStream}: a client's stream ids are odd and increase (SPDY/3.1 2.3.2)`,
      )
    this.#lastClientStream = id
    const one = (name: string): string => headers.get(name)?.[0] ?? ''
    const type = one('streamtype')
    if (!STREAM_TYPES[this.#kind].has(type))
      refuse(
        `stream ${id} has streamType '${type.slice(0, 40)}', which a ${this.#kind} session has not`,
      )
    const info: SpdyStreamInfo = {
      type,
      port: 0,
      connection: one('requestid') || String(id),
      finFromClient: false,
      finFromUpstream: false,
      buffer: [],
      bufferBytes: 0,
    }
    if (this.#kind === 'portforward') {
      const port = Number(one('port'))
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        refuse(`port-forward stream ${id} names no valid port`)
      info.port = port
    } else {
      // one stream of each type: the kubelet keeps the first, so a second could not be named
      if ([...this.#types.values()].includes(type))
        refuse(`a second ${type} stream (${id}) in one session`)
      this.#types.set(id, type)
    }
    this.#streams.set(id, info)
    if (this.#kind === 'portforward' && type === 'data')
      this.#observer.portOpened(info.connection, info.port)
    if (flags & FLAG_FIN) this.#fin(id, info, 'client')
  }

  #clientData(id: number, flags: number, data: Buffer): void {
    let info = this.#streams.get(id)
    if (!info) {
      // a stream that ended upstream may still get the client's bytes in flight; the receiver
      // drops them, they are recorded all the same
      info = this.#ended.get(id)
      if (!info) refuse(`DATA on stream ${id}, which was never opened`)
      if (info!.finFromClient) refuse(`DATA on stream ${id} after the client ended it`)
    } else if (info.finFromClient) refuse(`DATA on stream ${id} after the client ended it`)
    const o = this.#observer
    if (data.length) {
      if (this.#kind === 'portforward') {
        if (info!.type === 'data') o.portData(info!.connection, info!.port, 'in', data)
      } else if (info!.type === 'stdin') o.stdin(data)
      else if (info!.type === 'resize') this.#resize(info!, data)
    }
    if (flags & FLAG_FIN && this.#streams.has(id)) this.#fin(id, info!, 'client')
  }

  #upstream(f: SpdyFrame): void {
    if (f.type === 'syn_stream')
      return refuse(`the server opened stream ${f.streamId}; Kubernetes clients open every stream`)
    if (f.type === 'syn_reply' || f.type === 'headers') {
      this.#headers.upstream.decompress(f.headerBlock)
      const info = this.#streams.get(f.streamId)
      if (info && f.flags & FLAG_FIN) this.#fin(f.streamId, info, 'upstream')
      return
    }
    if (f.type === 'rst_stream') {
      const info = this.#streams.get(f.streamId)
      if (info) this.#end(f.streamId, info)
      return
    }
    if (f.type !== 'data') return
    const info = this.#streams.get(f.streamId)
    if (!info) return
    const o = this.#observer
    const data = f.data
    if (data.length) {
      if (this.#kind === 'portforward') {
        if (info.type === 'data') o.portData(info.connection, info.port, 'out', data)
        else if (info.type === 'error') this.#keep(info, data)
      } else if (info.type === 'stdout') o.stdout(data)
      else if (info.type === 'stderr') o.stderr(data)
      else if (info.type === 'error') this.#keep(info, data)
    }
    if (f.flags & FLAG_FIN) this.#fin(f.streamId, info, 'upstream')
  }

  /** The error stream's message, bounded (the exit Status is small; the rest is dropped). */
  #keep(info: SpdyStreamInfo, data: Buffer): void {
    const room = MAX_ERROR_MESSAGE - info.bufferBytes
    if (room <= 0) return
    const part = data.subarray(0, room)
    info.buffer.push(part)
    info.bufferBytes += part.length
  }

  #resize(info: SpdyStreamInfo, data: Buffer): void {
    // client-go writes one JSON object per line (json.Encoder); only the new bytes are searched
    let start = 0
    let nl: number
    while ((nl = data.indexOf(0x0a, start)) >= 0) {
      const line = Buffer.concat([...info.buffer, data.subarray(start, nl)])
      info.buffer = []
      info.bufferBytes = 0
      const size = parseResize(line)
      if (size) this.#observer.resize(size)
      start = nl + 1
    }
    const rest = data.subarray(start)
    if (!rest.length) return
    info.bufferBytes += rest.length
    if (info.bufferBytes > MAX_RESIZE_LINE)
      refuse(`a resize message longer than ${MAX_RESIZE_LINE} bytes`)
    info.buffer.push(rest)
  }

  #fin(id: number, info: SpdyStreamInfo, from: 'client' | 'upstream'): void {
    if (from === 'client') info.finFromClient = true
    else info.finFromUpstream = true
    if (from === 'client' && info.type === 'stdin') this.#observer.stdinClosed()
    if (from === 'upstream' && info.type === 'error') this.#errorMessage(info)
    if (info.finFromClient && info.finFromUpstream) this.#end(id, info)
  }

  #errorMessage(info: SpdyStreamInfo): void {
    const message = Buffer.concat(info.buffer)
    info.buffer = []
    info.bufferBytes = 0
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

  #end(id: number, info: SpdyStreamInfo): void {
    this.#streams.delete(id)
    this.#ended.set(id, info)
    if (this.#ended.size > MAX_ENDED_STREAMS) this.#ended.delete(this.#ended.keys().next().value!)
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

  termination(message: string, reason: string, protocolError = false): Buffer {
    const frames: Buffer[] = []
    const payload =
      this.#kind !== 'portforward' && this.#version >= 4
        ? protocolError
          ? terminationStatus(message, 'BadRequest', 400)
          : terminationStatus(message, reason)
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
    for (const m of wrap(() => this.#client.push(chunk))) {
      if (m.opcode === Opcode.BINARY) this.#spdy.fromClient(m.data)
      // the API server's tunnel takes binary messages only (it ends the connection on others)
      else if (m.opcode === Opcode.TEXT) refuse('a text message in a SPDY-over-WebSocket tunnel')
    }
  }

  fromUpstream(chunk: Buffer): void {
    for (const m of wrap(() => this.#upstream.push(chunk)))
      if (m.opcode === Opcode.BINARY) this.#spdy.fromUpstream(m.data)
  }

  /**
   * Whole WebSocket messages move; a SPDY frame split across messages moves in parts, each
   * part once its message is whole: the receiver's SPDY framer acts on a frame only when the
   * last part arrives, and the tap reads (and refuses) a frame when its last part does.
   */
  clientPendingBytes(): number {
    return this.#client.pendingBytes
  }

  settled(): Promise<void> {
    return this.#spdy.settled()
  }

  upstreamBytesToBoundary(): number {
    return this.#upstream.bytesToFrameEnd
  }

  termination(message: string, reason: string, protocolError = false): Buffer {
    const frames: Buffer[] = []
    if (this.#spdy.atUpstreamBoundary()) {
      const inner = this.#spdy.termination(message, reason, protocolError)
      if (inner.length) frames.push(encodeServerFrame(Opcode.BINARY, inner))
    }
    frames.push(encodeServerFrame(Opcode.CLOSE, closePayload(protocolError ? 1002 : 1000, message)))
    return Buffer.concat(frames)
  }

  close(): void {
    this.#spdy.close()
  }
}
