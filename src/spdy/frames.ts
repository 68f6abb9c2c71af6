// SPDY/3.1 framing (SPDY draft 3.1, section 2.2): an 8-byte header, then the payload.
// Control frames: C=1 | version(15) | type(16) | flags(8) | length(24).
// Data frames:    C=0 | stream id(31) | flags(8) | length(24).
// Header blocks stay compressed here; header-block.ts owns the zlib contexts, because
// compression state spans every frame of a connection and must be applied in order.

export const SPDY_VERSION = 3
export const FRAME_HEADER_BYTES = 8
/** The largest payload the 24-bit length field can express. */
export const MAX_FRAME_PAYLOAD = 0xffffff

export const FLAG_FIN = 0x01
export const FLAG_UNIDIRECTIONAL = 0x02

export const ControlType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const
const T = ControlType

/** RST_STREAM status codes (section 2.6.3). */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const

export type SpdyFrame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | {
      type: 'syn_stream'
      streamId: number
      associatedStreamId: number
      priority: number
      slot: number
      flags: number
      headerBlock: Buffer
    }
  | { type: 'syn_reply'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; flags: number; entries: { flags: number; id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'window_update'; streamId: number; delta: number }
  /** The spec says unknown control frames are ignored; they are kept so a tap loses nothing. */
  | { type: 'unknown'; controlType: number; flags: number; payload: Buffer }

/** Malformed input. The message says what was wrong, for logs and for the peer's GOAWAY. */
export class SpdyProtocolError extends Error {
  override readonly name = 'SpdyProtocolError'
}

const STREAM_ID_MASK = 0x7fffffff

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD)
    throw new SpdyProtocolError(`frame payload of ${length} bytes exceeds the 24-bit length field`)
  const h = Buffer.alloc(FRAME_HEADER_BYTES)
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0)
  h.writeUInt16BE(type, 2)
  h.writeUInt32BE(((flags & 0xff) << 24) | length, 4)
  return h
}

function checkStreamId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > STREAM_ID_MASK)
    throw new SpdyProtocolError(`invalid stream id ${id}`)
}

/** Serialises one frame. Header blocks must already be compressed (see HeaderCompressor). */
export function encodeFrame(frame: SpdyFrame): Buffer {
  switch (frame.type) {
    case 'data': {
      checkStreamId(frame.streamId)
      if (frame.data.length > MAX_FRAME_PAYLOAD)
        throw new SpdyProtocolError(
          `DATA payload of ${frame.data.length} bytes exceeds the 24-bit length field`,
        )
      const h = Buffer.alloc(FRAME_HEADER_BYTES)
      h.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0)
      h.writeUInt32BE(((frame.flags & 0xff) << 24) | frame.data.length, 4)
      return Buffer.concat([h, frame.data])
    }
    case 'syn_stream': {
      checkStreamId(frame.streamId)
      const body = Buffer.alloc(10)
      body.writeUInt32BE(frame.streamId, 0)
      body.writeUInt32BE(frame.associatedStreamId & STREAM_ID_MASK, 4)
      body.writeUInt8((frame.priority & 0x7) << 5, 8)
      body.writeUInt8(frame.slot & 0xff, 9)
      return Buffer.concat([
        controlHeader(T.SYN_STREAM, frame.flags, body.length + frame.headerBlock.length),
        body,
        frame.headerBlock,
      ])
    }
    case 'syn_reply':
    case 'headers': {
      checkStreamId(frame.streamId)
      const body = Buffer.alloc(4)
      body.writeUInt32BE(frame.streamId, 0)
      const type = frame.type === 'syn_reply' ? T.SYN_REPLY : T.HEADERS
      return Buffer.concat([
        controlHeader(type, frame.flags, 4 + frame.headerBlock.length),
        body,
        frame.headerBlock,
      ])
    }
    case 'rst_stream': {
      checkStreamId(frame.streamId)
      const body = Buffer.alloc(8)
      body.writeUInt32BE(frame.streamId, 0)
      body.writeUInt32BE(frame.status, 4)
      return Buffer.concat([controlHeader(T.RST_STREAM, 0, 8), body])
    }
    case 'settings': {
      const body = Buffer.alloc(4 + 8 * frame.entries.length)
      body.writeUInt32BE(frame.entries.length, 0)
      frame.entries.forEach((e, i) => {
        body.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + 8 * i)
        body.writeUInt32BE(e.value >>> 0, 8 + 8 * i)
      })
      return Buffer.concat([controlHeader(T.SETTINGS, frame.flags, body.length), body])
    }
    case 'ping': {
      const body = Buffer.alloc(4)
      body.writeUInt32BE(frame.id >>> 0, 0)
      return Buffer.concat([controlHeader(T.PING, 0, 4), body])
    }
    case 'goaway': {
      const body = Buffer.alloc(8)
      body.writeUInt32BE(frame.lastGoodStreamId & STREAM_ID_MASK, 0)
      body.writeUInt32BE(frame.status >>> 0, 4)
      return Buffer.concat([controlHeader(T.GOAWAY, 0, 8), body])
    }
    case 'window_update': {
      checkStreamId(frame.streamId === 0 ? 1 : frame.streamId)
      if (frame.delta < 1 || frame.delta > STREAM_ID_MASK)
        throw new SpdyProtocolError(`invalid WINDOW_UPDATE delta ${frame.delta}`)
      const body = Buffer.alloc(8)
      body.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0)
      body.writeUInt32BE(frame.delta, 4)
      return Buffer.concat([controlHeader(T.WINDOW_UPDATE, 0, 8), body])
    }
    case 'unknown':
      return Buffer.concat([
        controlHeader(frame.controlType, frame.flags, frame.payload.length),
        frame.payload,
      ])
  }
}

function need(payload: Buffer, bytes: number, what: string): void {
  if (payload.length < bytes)
    throw new SpdyProtocolError(
      `${what} frame too short: ${payload.length} bytes, expected at least ${bytes}`,
    )
}
function exactly(payload: Buffer, bytes: number, what: string): void {
  if (payload.length !== bytes)
    throw new SpdyProtocolError(`${what} frame has length ${payload.length}, expected ${bytes}`)
}
function nonZeroStream(id: number, what: string): number {
  if (id === 0) throw new SpdyProtocolError(`${what} frame with stream id 0`)
  return id
}

function decodeControl(type: number, flags: number, p: Buffer): SpdyFrame {
  switch (type) {
    case T.SYN_STREAM:
      need(p, 10, 'SYN_STREAM')
      return {
        type: 'syn_stream',
        streamId: nonZeroStream(p.readUInt32BE(0) & STREAM_ID_MASK, 'SYN_STREAM'),
        associatedStreamId: p.readUInt32BE(4) & STREAM_ID_MASK,
        priority: p.readUInt8(8) >> 5,
        slot: p.readUInt8(9),
        flags,
        headerBlock: p.subarray(10),
      }
    case T.SYN_REPLY:
    case T.HEADERS: {
      const what = type === T.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS'
      need(p, 4, what)
      return {
        type: type === T.SYN_REPLY ? 'syn_reply' : 'headers',
        streamId: nonZeroStream(p.readUInt32BE(0) & STREAM_ID_MASK, what),
        flags,
        headerBlock: p.subarray(4),
      }
    }
    case T.RST_STREAM: {
      exactly(p, 8, 'RST_STREAM')
      const status = p.readUInt32BE(4)
      if (status === 0) throw new SpdyProtocolError('RST_STREAM with status 0')
      return {
        type: 'rst_stream',
        streamId: nonZeroStream(p.readUInt32BE(0) & STREAM_ID_MASK, 'RST_STREAM'),
        status,
      }
    }
    case T.SETTINGS: {
      need(p, 4, 'SETTINGS')
      const count = p.readUInt32BE(0)
      exactly(p, 4 + 8 * count, `SETTINGS (${count} entries)`)
      const entries = []
      for (let i = 0; i < count; i++) {
        const word = p.readUInt32BE(4 + 8 * i)
        entries.push({ flags: word >>> 24, id: word & 0xffffff, value: p.readUInt32BE(8 + 8 * i) })
      }
      return { type: 'settings', flags, entries }
    }
    case T.PING:
      exactly(p, 4, 'PING')
      return { type: 'ping', id: p.readUInt32BE(0) }
    case T.GOAWAY:
      exactly(p, 8, 'GOAWAY')
      return {
        type: 'goaway',
        lastGoodStreamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        status: p.readUInt32BE(4),
      }
    case T.WINDOW_UPDATE: {
      exactly(p, 8, 'WINDOW_UPDATE')
      const delta = p.readUInt32BE(4) & STREAM_ID_MASK
      if (delta === 0) throw new SpdyProtocolError('WINDOW_UPDATE with delta 0')
      return { type: 'window_update', streamId: p.readUInt32BE(0) & STREAM_ID_MASK, delta }
    }
    default:
      return { type: 'unknown', controlType: type, flags, payload: p }
  }
}

/**
 * Incremental frame parser: feed it bytes as they arrive, in any split, and it returns the
 * complete frames. It never buffers more than one frame (bounded by maxFramePayload, and control
 * frames by maxControlFramePayload, checked as soon as a frame's 8-byte header is in), and joins
 * a frame's chunks once, when it is whole (a 16 MiB frame in 16 KiB chunks is not copied a
 * thousand times).
 */
export class FrameParser {
  readonly #maxPayload: number
  readonly #maxControlPayload: number
  #chunks: Buffer[] = []
  #bytes = 0
  #failed: SpdyProtocolError | undefined

  constructor(options: { maxFramePayload?: number; maxControlFramePayload?: number } = {}) {
    this.#maxPayload = Math.min(options.maxFramePayload ?? MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD)
    this.#maxControlPayload = Math.min(
      options.maxControlFramePayload ?? this.#maxPayload,
      this.#maxPayload,
    )
  }

  /** Bytes received that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.#bytes
  }

  /** Bytes still to come before the frame being received ends; 0 at a frame boundary. */
  get bytesToFrameEnd(): number {
    if (this.#bytes === 0) return 0
    if (this.#bytes < FRAME_HEADER_BYTES) return Number.POSITIVE_INFINITY
    const h = this.#peek(FRAME_HEADER_BYTES)
    return FRAME_HEADER_BYTES + (h.readUInt32BE(4) & 0xffffff) - this.#bytes
  }

  /** The first n buffered bytes (n <= #bytes), joining only the chunks they span. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!
    if (first.length >= n) return first.subarray(0, n)
    const parts: Buffer[] = []
    let have = 0
    for (const c of this.#chunks) {
      parts.push(c)
      have += c.length
      if (have >= n) break
    }
    return Buffer.concat(parts).subarray(0, n)
  }

  /** Removes and returns the first n buffered bytes as one (copied) buffer. */
  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks)
    // copy, so callers may keep frames while the connection's buffers are reused
    const out = Buffer.from(all.subarray(0, n))
    const rest = all.subarray(n)
    this.#chunks = rest.length ? [rest] : []
    this.#bytes = rest.length
    return out
  }

  push(chunk: Buffer): SpdyFrame[] {
    if (this.#failed) throw this.#failed
    if (chunk.length) {
      this.#chunks.push(chunk)
      this.#bytes += chunk.length
    }
    const frames: SpdyFrame[] = []
    try {
      while (this.#bytes >= FRAME_HEADER_BYTES) {
        const h = this.#peek(FRAME_HEADER_BYTES)
        const word0 = h.readUInt32BE(0)
        const word1 = h.readUInt32BE(4)
        const flags = word1 >>> 24
        const length = word1 & 0xffffff
        const isControl = (word0 & 0x80000000) !== 0
        if (isControl) {
          const version = (word0 >>> 16) & 0x7fff
          if (version !== SPDY_VERSION)
            throw new SpdyProtocolError(
              `unsupported SPDY version ${version} (expected ${SPDY_VERSION})`,
            )
          if (length > this.#maxControlPayload)
            throw new SpdyProtocolError(
              `control frame payload of ${length} bytes exceeds the limit of ${this.#maxControlPayload}`,
            )
        }
        if (length > this.#maxPayload)
          throw new SpdyProtocolError(
            `frame payload of ${length} bytes exceeds the limit of ${this.#maxPayload}`,
          )
        if (this.#bytes < FRAME_HEADER_BYTES + length) break
        const payload = this.#take(FRAME_HEADER_BYTES + length).subarray(FRAME_HEADER_BYTES)
        if (isControl) frames.push(decodeControl(word0 & 0xffff, flags, payload))
        else
          frames.push({
            type: 'data',
            streamId: nonZeroStream(word0 & STREAM_ID_MASK, 'DATA'),
            flags,
            data: payload,
          })
      }
    } catch (err) {
      this.#failed = err instanceof SpdyProtocolError ? err : new SpdyProtocolError(String(err))
      throw this.#failed
    }
    return frames
  }

  /** The connection ended: anything still buffered is a truncated frame. */
  end(): void {
    if (this.#bytes > 0)
      throw new SpdyProtocolError(
        `connection ended inside a frame (${this.#bytes} bytes of an incomplete frame)`,
      )
  }
}
