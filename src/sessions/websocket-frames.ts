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
    const len7 = h[1]! & 0x7f
    const masked = (h[1]! & 0x80) !== 0
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0)
  }

  #payloadLength(h: Buffer): number {
    const len7 = h[1]! & 0x7f
    if (len7 < 126) return len7
    if (h.length < 4) return Number.POSITIVE_INFINITY
    if (len7 === 126) return h.readUInt16BE(2)
    if (h.length < 10) return Number.POSITIVE_INFINITY
    const high = h.readUInt32BE(2)
    if (high !== 0) throw new WebSocketProtocolError('frame length beyond 4 GiB')
    return h.readUInt32BE(6)
  }

  #startFrame(out: WebSocketMessage[]): void {
    const h = this.#header
    const fin = (h[0]! & 0x80) !== 0
    if ((h[0]! & 0x70) !== 0)
      throw new WebSocketProtocolError('reserved bits set (no extension was negotiated)')
    const opcode = h[0]! & 0x0f
    const masked = (h[1]! & 0x80) !== 0
    if (masked !== this.#expectMasked)
      throw new WebSocketProtocolError(
        this.#expectMasked ? 'unmasked frame from the client' : 'masked frame from the server',
      )
    const length = this.#payloadLength(h)
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
