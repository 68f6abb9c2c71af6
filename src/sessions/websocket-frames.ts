// A passive, incremental WebSocket frame reader (RFC 6455, section 5.2) for the session tap. It
// observes the bytes Gatehouse relays; it never changes them. It reassembles fragmented
// messages (bounded), unmasks client frames, and knows at every moment how far the current
// frame still runs, so that Gatehouse can inject its own frame (a termination message) only at
// a frame boundary.
//
// The `ws` package reads frames well but buffers whole frames and hides where they end, which is
// exactly what the tap needs to know; the frame format itself is small and stable.

export class WebSocketProtocolError extends Error {
  override readonly name = 'WebSocketProtocolError'
}

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const

export interface WebSocketMessage {
  /** TEXT, BINARY, CLOSE, PING or PONG (continuations are joined into their message). */
  opcode: number
  data: Buffer
}

/** A frame's head (RFC 6455 5.2). */
export interface FrameHead {
  fin: boolean
  /** The RSV1-3 bits (0 unless an extension was negotiated). */
  rsv: number
  opcode: number
  masked: boolean
  /** Bytes of the head, mask key included. */
  headLength: number
  payloadLength: number
}

/**
 * The head of the frame `h` starts with, once its length bytes are there (undefined before).
 * Throws WebSocketProtocolError for a length beyond 4 GiB (no relay buffers that much).
 */
export function readFrameHead(h: Buffer): FrameHead | undefined {
  if (h.length < 2) return undefined
  const len7 = h[1]! & 0x7f
  const masked = (h[1]! & 0x80) !== 0
  const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
  if (h.length < 2 + extended) return undefined
  let payloadLength = len7
  if (len7 === 126) payloadLength = h.readUInt16BE(2)
  else if (len7 === 127) {
    if (h.readUInt32BE(2) !== 0) throw new WebSocketProtocolError('frame length beyond 4 GiB')
    payloadLength = h.readUInt32BE(6)
  }
  return {
    fin: (h[0]! & 0x80) !== 0,
    rsv: h[0]! & 0x70,
    opcode: h[0]! & 0x0f,
    masked,
    headLength: 2 + extended + (masked ? 4 : 0),
    payloadLength,
  }
}

const State = { Header: 0, Payload: 1 } as const

export class WebSocketFrameReader {
  readonly #maxMessage: number
  /** Client-to-server frames must be masked, server-to-client frames must not (RFC 6455 5.1). */
  readonly #expectMasked: boolean
  #state: number = State.Header
  #header: Buffer = Buffer.alloc(0)
  #remaining = 0
  #mask: Buffer | undefined
  #maskOffset = 0
  #opcode = 0
  #fin = false
  /** The fragments of the data message being reassembled. */
  #fragments: Buffer[] = []
  #fragmentBytes = 0
  #fragmentOpcode = 0
  /** The control frame being read (control frames may arrive between fragments). */
  #control: Buffer[] = []
  #failed: WebSocketProtocolError | undefined
  /** Bytes pushed so far, and where the last whole message (or control frame) ended. */
  #total = 0
  #clean = 0

  constructor(opts: { masked: boolean; maxMessageBytes: number }) {
    this.#expectMasked = opts.masked
    this.#maxMessage = opts.maxMessageBytes
  }

  /** Bytes still to come before the current frame ends; 0 at a frame boundary. */
  get bytesToFrameEnd(): number {
    if (this.#state === State.Payload) return this.#remaining
    if (this.#header.length === 0) return 0
    const needed = this.#headerLength(this.#header)
    if (needed === undefined) return Number.POSITIVE_INFINITY
    return needed - this.#header.length + this.#payloadLength(this.#header)
  }

  /**
   * Bytes since the last point where no frame was half-read and no fragmented message open:
   * what a relay that forwards whole messages only still holds back.
   */
  get pendingBytes(): number {
    return this.#total - this.#clean
  }

  get failed(): boolean {
    return this.#failed !== undefined
  }

  /** Feeds relayed bytes; returns the messages they completed. Throws WebSocketProtocolError. */
  push(chunk: Buffer): WebSocketMessage[] {
    if (this.#failed) throw this.#failed
    const out: WebSocketMessage[] = []
    const base = this.#total
    try {
      let offset = 0
      const mark = (): void => {
        if (this.#state === State.Header && this.#header.length === 0 && this.#fragmentOpcode === 0)
          this.#clean = base + offset
      }
      while (offset < chunk.length) {
        if (this.#state === State.Header) {
          const need = this.#headerLength(this.#header)
          const want = (need ?? this.#header.length + 1) - this.#header.length
          const take = Math.min(want, chunk.length - offset)
          this.#header = Buffer.concat([this.#header, chunk.subarray(offset, offset + take)])
          offset += take
          const full = this.#headerLength(this.#header)
          if (full !== undefined && this.#header.length === full) this.#startFrame(out)
          mark()
          continue
        }
        const take = Math.min(this.#remaining, chunk.length - offset)
        this.#payload(chunk.subarray(offset, offset + take))
        offset += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#endFrame(out)
        mark()
      }
      this.#total = base + chunk.length
    } catch (e) {
      this.#failed = e instanceof WebSocketProtocolError ? e : new WebSocketProtocolError(String(e))
      throw this.#failed
    }
    return out
  }

  /** Header length once its first two bytes are known (undefined before). */
  #headerLength(h: Buffer): number | undefined {
    if (h.length < 2) return undefined
    // known from the first two bytes, before the extended length arrives
    const len7 = h[1]! & 0x7f
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (h[1]! & 0x80 ? 4 : 0)
  }

  #payloadLength(h: Buffer): number {
    return readFrameHead(h)?.payloadLength ?? Number.POSITIVE_INFINITY
  }

  #startFrame(out: WebSocketMessage[]): void {
    const h = this.#header
    const head = readFrameHead(h)
    if (!head) throw new WebSocketProtocolError('a frame head cut short')
    const { fin, opcode, masked } = head
    if (head.rsv !== 0)
      throw new WebSocketProtocolError('reserved bits set (no extension was negotiated)')
    if (masked !== this.#expectMasked)
      throw new WebSocketProtocolError(
        this.#expectMasked ? 'unmasked frame from the client' : 'masked frame from the server',
      )
    const length = head.payloadLength
    const isControl = opcode >= 0x8
    if (![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode))
      throw new WebSocketProtocolError(`unknown opcode ${opcode}`)
    if (isControl && (length > 125 || !fin))
      throw new WebSocketProtocolError('control frame longer than 125 bytes or fragmented')
    if (opcode === Opcode.CONTINUATION && this.#fragmentOpcode === 0)
      throw new WebSocketProtocolError('continuation frame without a message to continue')
    if (!isControl && opcode !== Opcode.CONTINUATION && this.#fragmentOpcode !== 0)
      throw new WebSocketProtocolError('new data message before the previous one ended')
    if (!isControl && this.#fragmentBytes + length > this.#maxMessage)
      throw new WebSocketProtocolError(
        `message longer than ${this.#maxMessage} bytes (the session limit for one message)`,
      )
    this.#opcode = opcode
    this.#fin = fin
    this.#mask = masked ? Buffer.from(h.subarray(h.length - 4)) : undefined
    this.#maskOffset = 0
    if (!isControl && opcode !== Opcode.CONTINUATION) this.#fragmentOpcode = opcode
    this.#header = Buffer.alloc(0)
    this.#remaining = length
    this.#state = State.Payload
    if (length === 0) this.#endFrame(out)
  }

  #payload(data: Buffer): void {
    let bytes = data
    if (this.#mask) {
      bytes = Buffer.allocUnsafe(data.length)
      for (let i = 0; i < data.length; i++)
        bytes[i] = data[i]! ^ this.#mask[(this.#maskOffset + i) & 3]!
      this.#maskOffset += data.length
    }
    if (this.#opcode >= 0x8) this.#control.push(bytes)
    else {
      this.#fragments.push(bytes)
      this.#fragmentBytes += bytes.length
    }
  }

  #endFrame(out: WebSocketMessage[]): void {
    this.#state = State.Header
    if (this.#opcode >= 0x8) {
      out.push({ opcode: this.#opcode, data: Buffer.concat(this.#control) })
      this.#control = []
      return
    }
    if (!this.#fin) return
    out.push({ opcode: this.#fragmentOpcode, data: Buffer.concat(this.#fragments) })
    this.#fragments = []
    this.#fragmentBytes = 0
    this.#fragmentOpcode = 0
  }
}

/** A server-to-client (unmasked) frame, for the messages Gatehouse itself sends. */
export function encodeServerFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length
  const head = len < 126 ? Buffer.alloc(2) : len < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10)
  head[0] = 0x80 | opcode
  if (len < 126) head[1] = len
  else if (len < 0x10000) {
    head[1] = 126
    head.writeUInt16BE(len, 2)
  } else {
    head[1] = 127
    head.writeUInt32BE(0, 2)
    head.writeUInt32BE(len, 6)
  }
  return Buffer.concat([head, payload])
}

/** A CLOSE frame payload: status code and a UTF-8 reason (at most 123 bytes). */
export function closePayload(code: number, reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, 123)
  const b = Buffer.alloc(2 + r.length)
  b.writeUInt16BE(code, 0)
  r.copy(b, 2)
  return b
}
