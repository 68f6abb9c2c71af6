// What the client receives of exec and attach, masked: stdout and stderr run through one stream
// masker each (src/masking/stream.ts) on their way from the API server to the client and are
// re-framed in the session's own framing; every other frame passes byte for byte, in order.
// Port-forward (raw TCP) and the client-to-upstream direction are never rewritten.
//
// Text a masker holds back (what may still become a value) goes out before anything that makes
// the client stop or print after it: the error channel (the exit Status), a v5 close of the
// channel, a stream FIN, a WebSocket CLOSE, a SPDY RST_STREAM or GOAWAY, the upstream's end, and
// Gatehouse's own termination (`end()`: the stream was cut, so a value under way is masked as it
// stands); and when a hold bound runs out (a marker shown, a value masked as it stands). Other
// control frames (ping, window updates) let nothing out: a value split around them is caught.
//
// The rewriter only ever emits whole frames, so the client's stream is at a frame boundary after
// every call: Gatehouse's own frames (a termination, a bound's release) can follow at any time.
import { StreamMaskers, type Clock } from '../masking/stream-set.ts'
import { encodeFrame, FLAG_FIN } from '../spdy/index.ts'
import type { TextMasking } from './masked-streams.ts'
import { Channel, type Dialect } from '../kube/remote-command.ts'
import type { SpdyStreamTypes } from './tap.ts'
import { encodeServerFrame, Opcode, readFrameHead } from './websocket-frames.ts'

export interface ClientRewriter {
  /** Upstream bytes, already shown to the tap; what the client gets goes to `send`, in order. */
  push(chunk: Buffer): void
  /** Set while the rewriter waits for the tap to decode SPDY headers (stop reading upstream). */
  readonly waiting: Promise<void> | undefined
  /** Held-back text goes out now, masked (Gatehouse is about to speak last, or the end). */
  end(): void
  /** Values masked so far in what the client received. */
  readonly masked: number
}

export interface ClientMaskingOptions {
  dialect: Dialect
  /** The session tap (SPDY: where stream types come from). */
  streamTypes: SpdyStreamTypes | undefined
  /** The caller's masking profile (its policy decision). */
  masking: TextMasking
  /** Bytes for the client: whole frames only. */
  send: (bytes: Buffer) => void
  /** An error after the rewriter returned (SPDY frames rewritten once headers were decoded). */
  onError: (e: unknown) => void
  /** The hold bounds' time and timers (tests pause streams without sleeping). */
  clock?: Clock | undefined
}

/** The rewriter for an exec or attach session; undefined for dialects that carry no terminal. */
export function createClientRewriter(opts: ClientMaskingOptions): ClientRewriter | undefined {
  if (opts.dialect.transport === 'websocket') return new WebSocketRewriter(opts, opts.dialect)
  if (opts.dialect.transport === 'spdy' && opts.streamTypes)
    return new SpdyRewriter(opts, opts.streamTypes)
  return undefined
}

function maskersFor(
  opts: ClientMaskingOptions,
  onRelease: (stream: number, data: Buffer) => void,
): StreamMaskers<number> {
  return new StreamMaskers({ masking: opts.masking, clock: opts.clock, onRelease })
}

/**
 * Splits a byte stream into whole frames. `frameLength(head)` gives a frame's total length from
 * its first bytes (undefined: more are needed). Chunks are joined once per frame.
 */
class FrameSplitter {
  readonly #frameLength: (head: Buffer) => number | undefined
  readonly #headBytes: number
  #chunks: Buffer[] = []
  #length = 0
  #need: number | undefined

  constructor(headBytes: number, frameLength: (head: Buffer) => number | undefined) {
    this.#headBytes = headBytes
    this.#frameLength = frameLength
  }

  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk)
    this.#length += chunk.length
    const out: Buffer[] = []
    for (;;) {
      if (this.#need === undefined) {
        if (this.#length === 0) return out
        if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)]
        this.#need = this.#frameLength(this.#chunks[0]!.subarray(0, this.#headBytes))
        if (this.#need === undefined) return out
      }
      if (this.#length < this.#need) return out
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks)
      out.push(all.subarray(0, this.#need))
      const rest = all.subarray(this.#need)
      this.#chunks = rest.length ? [rest] : []
      this.#length = rest.length
      this.#need = undefined
      if (!rest.length) return out
    }
  }
}

/** RFC 6455 5.2: a server frame's length from its first 2 to 10 bytes. */
function webSocketFrameLength(h: Buffer): number | undefined {
  const head = readFrameHead(h)
  if (!head) return undefined
  // the tap refuses masked server frames before the rewriter sees them (RFC 6455 5.1)
  if (head.masked) throw new Error('masked frame from the server')
  return head.headLength + head.payloadLength
}

interface WebSocketFrame {
  raw: Buffer
  fin: boolean
  opcode: number
  payload: Buffer
}

function parseWebSocketFrame(raw: Buffer): WebSocketFrame {
  const head = readFrameHead(raw)
  if (!head) throw new Error('a WebSocket frame shorter than its head')
  return { raw, fin: head.fin, opcode: head.opcode, payload: raw.subarray(head.headLength) }
}

/**
 * WebSocket remote command: channel.k8s.io, base64.channel.k8s.io, v4.*, v5.channel.k8s.io.
 * A stdout or stderr message (all its fragments) is masked and sent as one unfragmented message
 * with the same opcode; base64 dialects are decoded and re-encoded. Server frames are unmasked
 * (RFC 6455 5.1), so re-framing needs no mask key. Control frames between fragments go out when
 * they arrive, as the RFC lets them (5.4); everything else is sent as it came.
 */
class WebSocketRewriter implements ClientRewriter {
  readonly #opts: ClientMaskingOptions
  readonly #dialect: Extract<Dialect, { transport: 'websocket' }>
  readonly #splitter = new FrameSplitter(10, webSocketFrameLength)
  readonly #maskers: StreamMaskers<number>
  /** The fragments of the data message being received. */
  #message: WebSocketFrame[] = []
  #ended = false
  readonly waiting = undefined

  constructor(opts: ClientMaskingOptions, dialect: Extract<Dialect, { transport: 'websocket' }>) {
    this.#opts = opts
    this.#dialect = dialect
    this.#maskers = maskersFor(opts, (channel, data) => {
      if (!this.#ended) this.#send(channel, data)
    })
  }

  get masked(): number {
    return this.#maskers.masked
  }

  push(chunk: Buffer): void {
    for (const raw of this.#splitter.push(chunk)) this.#frame(parseWebSocketFrame(raw))
  }

  #frame(f: WebSocketFrame): void {
    if (f.opcode >= 0x8) {
      if (f.opcode === Opcode.CLOSE) this.#endAll(true)
      return this.#opts.send(f.raw)
    }
    this.#message.push(f)
    if (!f.fin) return
    const fragments = this.#message
    this.#message = []
    const payload =
      fragments.length === 1 ? f.payload : Buffer.concat(fragments.map((m) => m.payload))
    const raw = (): Buffer =>
      fragments.length === 1 ? f.raw : Buffer.concat(fragments.map((m) => m.raw))
    if (payload.length === 0) return this.#opts.send(raw())
    const base64 = this.#dialect.base64
    const channel = base64 ? payload[0]! - 0x30 : payload[0]!
    if (channel === Channel.stdout || channel === Channel.stderr) {
      const data = base64
        ? Buffer.from(payload.subarray(1).toString('latin1'), 'base64')
        : payload.subarray(1)
      // an empty message (the "channel open" message v1 servers send first) passes as it is
      if (data.length === 0) return this.#opts.send(raw())
      return this.#send(channel, this.#maskers.push(channel, data), fragments[0]!.opcode)
    }
    if (channel === Channel.error) this.#endAll()
    else if (channel === Channel.close && this.#dialect.version >= 5 && payload.length > 1)
      this.#send(payload[1]!, this.#maskers.end(payload[1]!))
    this.#opts.send(raw())
  }

  #send(channel: number, data: Buffer, opcode?: number): void {
    if (data.length === 0) return
    const frame = this.#dialect.base64
      ? encodeServerFrame(
          opcode ?? Opcode.TEXT,
          Buffer.from(String(channel) + data.toString('base64'), 'latin1'),
        )
      : encodeServerFrame(opcode ?? Opcode.BINARY, Buffer.concat([Buffer.from([channel]), data]))
    this.#opts.send(frame)
  }

  #endAll(truncated = false): void {
    for (const [channel, data] of this.#maskers.endAll({ truncated })) this.#send(channel, data)
  }

  end(): void {
    if (this.#ended) return
    this.#endAll(true)
    this.#ended = true
    this.#maskers.stop()
  }
}

const CONTROL_RST_STREAM = 3
const CONTROL_GOAWAY = 7

/**
 * SPDY/3.1 exec and attach: DATA frames of the streams whose SYN_STREAM said stdout or stderr are
 * masked and re-framed with the same flags (FIN kept; the tail of the stream goes into the FIN
 * frame); every control frame passes byte for byte, so the header-compression contexts of both
 * ends see exactly the blocks they would have seen. Stream types come from the tap, which
 * decompresses the header blocks asynchronously: a DATA frame of a stream not yet known waits
 * (with the frames after it) until the blocks fed so far are decoded.
 *
 * A masked DATA frame is longer or shorter than the original, so the client's receive window no
 * longer matches what the kubelet sent. That is safe with the peers Kubernetes uses: Go's
 * moby/spdystream neither sends WINDOW_UPDATE nor enforces windows (connection.go's frame
 * handler has no case for WindowUpdateFrame: it falls to "unhandled frame type", which is
 * dropped), and WINDOW_UPDATE frames Gatehouse relays pass unchanged.
 */
class SpdyRewriter implements ClientRewriter {
  readonly #opts: ClientMaskingOptions
  readonly #types: SpdyStreamTypes
  readonly #splitter = new FrameSplitter(8, (h) =>
    h.length < 8 ? undefined : 8 + (h.readUInt32BE(4) & 0xffffff),
  )
  readonly #maskers: StreamMaskers<number>
  /** Frames waiting (in order) for the tap to decode the header blocks before them. */
  #queue: Buffer[] = []
  #waiting: Promise<void> | undefined
  #ended = false

  constructor(opts: ClientMaskingOptions, types: SpdyStreamTypes) {
    this.#opts = opts
    this.#types = types
    this.#maskers = maskersFor(opts, (id, data) => {
      if (!this.#ended) this.#data(id, data, 0)
    })
  }

  get masked(): number {
    return this.#maskers.masked
  }

  get waiting(): Promise<void> | undefined {
    return this.#waiting
  }

  push(chunk: Buffer): void {
    for (const raw of this.#splitter.push(chunk)) {
      if (this.#queue.length || !this.#frame(raw, false)) this.#queue.push(raw)
    }
    if (this.#queue.length && !this.#waiting) this.#wait()
  }

  #wait(): void {
    const decoded = this.#types.headersDecoded() ?? Promise.resolve()
    this.#waiting = decoded.then(() => {
      this.#waiting = undefined
      if (this.#ended) return
      try {
        this.#drain()
      } catch (e) {
        this.#opts.onError(e)
      }
    })
  }

  /** Every frame queued, now that the streams it names are known (or never will be). */
  #drain(): void {
    const queued = this.#queue
    this.#queue = []
    for (const raw of queued) this.#frame(raw, true)
  }

  /** Sends one frame, rewritten if it is stdout or stderr; false: its stream is not known yet. */
  #frame(raw: Buffer, decoded: boolean): boolean {
    if (raw[0]! & 0x80) {
      const type = raw.readUInt16BE(2)
      if (type === CONTROL_GOAWAY) this.#endAll(true)
      else if (type === CONTROL_RST_STREAM && raw.length >= 12) {
        const id = raw.readUInt32BE(8) & 0x7fffffff
        this.#data(id, this.#maskers.end(id, { truncated: true }), 0)
      }
      this.#opts.send(raw)
      return true
    }
    const id = raw.readUInt32BE(0) & 0x7fffffff
    const flags = raw[4]!
    const type = this.#types.streamType(id)
    if (type === undefined && !decoded && this.#types.headersDecoded()) return false
    // A stream the tap cannot name (no SYN_STREAM, or its header block failed to decode) is
    // masked like output: fail closed (spdystream drops DATA of streams it does not know).
    if (type === 'stdout' || type === 'stderr' || type === undefined) {
      let out = this.#maskers.push(id, raw.subarray(8))
      if (flags & FLAG_FIN) out = Buffer.concat([out, this.#maskers.end(id)])
      this.#data(id, out, flags)
      return true
    }
    if (type === 'error') this.#endAll()
    this.#opts.send(raw)
    return true
  }

  #data(streamId: number, data: Buffer, flags: number): void {
    if (data.length === 0 && !(flags & FLAG_FIN)) return
    this.#opts.send(encodeFrame({ type: 'data', streamId, flags, data }))
  }

  #endAll(truncated = false): void {
    for (const [id, data] of this.#maskers.endAll({ truncated })) this.#data(id, data, 0)
  }

  end(): void {
    if (this.#ended) return
    // Gatehouse speaks last now: frames still waiting for their stream's type go out first
    this.#drain()
    this.#endAll(true)
    this.#ended = true
    this.#maskers.stop()
  }
}
