// A SPDY/3.1 endpoint over any byte stream: the fake kubelet serves exec and port-forward with
// it, and tests drive it as a client. Frames go out strictly in order (header blocks share one
// compression context per direction), each stream is a Node Duplex, and malformed input ends
// the session with GOAWAY instead of throwing.
//
// Flow control: Kubernetes' SPDY implementation (moby/spdystream) neither sends nor honours
// WINDOW_UPDATE, so neither do we; WINDOW_UPDATE and SETTINGS are accepted and ignored.
import { EventEmitter } from 'node:events'
import { Duplex } from 'node:stream'
import {
  encodeFrame,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  RstStatus,
  SpdyProtocolError,
  type SpdyFrame,
} from '../../../src/spdy/frames.ts'
import {
  HeaderCompressor,
  HeaderDecompressor,
  type SpdyHeaders,
} from '../../../src/spdy/header-block.ts'

/** Largest DATA payload we send; Go peers read any size, this keeps latency per frame low. */
const MAX_DATA_CHUNK = 32 * 1024
const GOAWAY_PROTOCOL_ERROR = 1

export type HeaderInput = SpdyHeaders | Record<string, string | string[]>

export class SpdyStream extends Duplex {
  readonly id: number
  /** The SYN_STREAM headers (for streams the peer opened) or the ones we sent. */
  readonly headers: SpdyHeaders
  /** Set when the peer reset the stream. */
  resetStatus: number | undefined
  readonly #session: SpdySession
  #remoteEnded = false
  #localEnded = false

  constructor(session: SpdySession, id: number, headers: SpdyHeaders) {
    super({ allowHalfOpen: true })
    this.#session = session
    this.id = id
    this.headers = headers
    // A stream that ends or closes while saturated will never ask for more (_read): release it.
    const release = (): void => this.#session.unsaturate(this)
    this.once('end', release)
    this.once('close', release)
  }

  /** The first value of a header, e.g. stream.header('streamtype'). */
  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0]
  }

  /** Accept a stream the peer opened (SYN_REPLY). Kubernetes clients wait for it. */
  reply(headers: HeaderInput = {}, options: { fin?: boolean } = {}): Promise<void> {
    if (options.fin) this.#localEnded = true
    return this.#session.sendHeaders('syn_reply', this.id, headers, options.fin ? FLAG_FIN : 0)
  }

  /** Abort the stream in both directions. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!this.#session.isOpen) return void this.destroy()
    void this.#session
      .sendFrame({ type: 'rst_stream', streamId: this.id, status })
      .catch(() => undefined)
    this.#localEnded = true
    this.#remoteEnded = true
    this.destroy()
  }

  override _read(): void {
    this.#session.unsaturate(this)
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    const frames: Promise<void>[] = []
    for (let off = 0; off < chunk.length; off += MAX_DATA_CHUNK) {
      frames.push(
        this.#session.sendFrame({
          type: 'data',
          streamId: this.id,
          flags: 0,
          data: chunk.subarray(off, off + MAX_DATA_CHUNK),
        }),
      )
    }
    Promise.all(frames).then(() => callback(), callback)
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.#localEnded) return callback()
    this.#localEnded = true
    this.#session
      .sendFrame({ type: 'data', streamId: this.id, flags: FLAG_FIN, data: Buffer.alloc(0) })
      .then(() => {
        this.#session.maybeForget(this)
        callback()
      }, callback)
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#session.forget(this)
    callback(err)
  }

  /** Session-internal: data from the peer. Returns false when the reader is saturated. */
  deliver(data: Buffer, fin: boolean): boolean {
    if (this.#remoteEnded) return true
    let more = true
    if (data.length > 0) more = this.push(data)
    if (fin) this.remoteEnd()
    return more
  }

  remoteEnd(): void {
    if (this.#remoteEnded) return
    this.#remoteEnded = true
    this.push(null)
    this.#session.maybeForget(this)
  }

  markLocalEnded(): void {
    this.#localEnded = true
  }

  get fullyClosed(): boolean {
    return this.#remoteEnded && this.#localEnded
  }
}

export interface SpdySessionOptions {
  /** client streams have odd ids, server streams even (SPDY section 2.3.2). */
  role: 'client' | 'server'
  maxFramePayload?: number
  maxHeaderBlockBytes?: number
  /** Called for every frame seen, before it is acted upon (used by tests and the tap). */
  onFrame?: (frame: SpdyFrame, direction: 'in' | 'out') => void
}

interface SessionEvents {
  stream: [stream: SpdyStream]
  goaway: [status: number]
  protocolError: [error: SpdyProtocolError]
  close: []
}

export class SpdySession extends EventEmitter<SessionEvents> {
  readonly #socket: Duplex
  readonly #role: 'client' | 'server'
  readonly #parser: FrameParser
  readonly #compressor = new HeaderCompressor()
  readonly #decompressor: HeaderDecompressor
  readonly #onFrame: SpdySessionOptions['onFrame']
  readonly #streams = new Map<number, SpdyStream>()
  readonly #awaitingReply = new Map<
    number,
    { resolve: (h: SpdyHeaders) => void; reject: (e: Error) => void }
  >()
  readonly #pings = new Map<number, () => void>()
  #nextStreamId: number
  #nextPingId: number
  #lastPeerStreamId = 0
  #out: Promise<void> = Promise.resolve()
  #in: Promise<void> = Promise.resolve()
  #open = true
  #goingAway = false
  readonly #saturated = new Set<SpdyStream>()

  constructor(socket: Duplex, options: SpdySessionOptions) {
    super()
    this.#socket = socket
    this.#role = options.role
    this.#nextStreamId = options.role === 'client' ? 1 : 2
    this.#nextPingId = options.role === 'client' ? 1 : 2
    this.#parser = new FrameParser(
      options.maxFramePayload === undefined ? {} : { maxFramePayload: options.maxFramePayload },
    )
    this.#decompressor = new HeaderDecompressor(
      options.maxHeaderBlockBytes === undefined
        ? {}
        : { maxHeaderBlockBytes: options.maxHeaderBlockBytes },
    )
    this.#onFrame = options.onFrame
    socket.on('data', (chunk: Buffer) => this.#receive(chunk))
    socket.on('end', () => this.#enqueueInput(() => this.#peerEnded()))
    socket.on('error', () => this.#shutdown())
    socket.on('close', () => this.#shutdown())
  }

  get isOpen(): boolean {
    return this.#open
  }

  /** Open a stream and wait for the peer's SYN_REPLY. */
  async openStream(
    headers: HeaderInput,
    options: { fin?: boolean; unidirectional?: boolean } = {},
  ): Promise<SpdyStream> {
    if (!this.#open || this.#goingAway) throw new SpdyProtocolError('session is closed')
    const id = this.#nextStreamId
    this.#nextStreamId += 2
    const map =
      headers instanceof Map
        ? headers
        : new Map(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]))
    const stream = new SpdyStream(this, id, map)
    if (options.fin) stream.markLocalEnded()
    this.#streams.set(id, stream)
    const replied = new Promise<SpdyHeaders>((resolve, reject) =>
      this.#awaitingReply.set(id, { resolve, reject }),
    )
    // Handled even if sending the SYN_STREAM fails first (then nobody awaits it).
    replied.catch(() => undefined)
    const flags = (options.fin ? FLAG_FIN : 0) | (options.unidirectional ? FLAG_UNIDIRECTIONAL : 0)
    await this.#enqueueOutput(async () => {
      const headerBlock = await this.#compressor.compress(map)
      return {
        type: 'syn_stream',
        streamId: id,
        associatedStreamId: 0,
        priority: 0,
        slot: 0,
        flags,
        headerBlock,
      }
    })
    await replied
    return stream
  }

  /** Round-trip time of a PING, in ms. */
  ping(): Promise<number> {
    const id = this.#nextPingId
    this.#nextPingId += 2
    const started = performance.now()
    return new Promise((resolve, reject) => {
      this.#pings.set(id, () => resolve(performance.now() - started))
      this.sendFrame({ type: 'ping', id }).catch(reject)
    })
  }

  /**
   * Tell the peer no more streams will be accepted (GOAWAY). Like Kubernetes' own endpoints,
   * the connection stays up so the peer can finish reading; end() or destroy() closes it.
   */
  async goAway(status = 0): Promise<void> {
    if (!this.#open || this.#goingAway) return
    this.#goingAway = true
    await this.sendFrame({
      type: 'goaway',
      lastGoodStreamId: this.#lastPeerStreamId,
      status,
    }).catch(() => undefined)
  }

  /** Close our side once everything queued has been written. */
  async end(): Promise<void> {
    await this.#out
    this.#socket.end()
  }

  /** Tear the connection down now. */
  destroy(): void {
    this.#socket.destroy()
    this.#shutdown()
  }

  // --- used by SpdyStream ---

  sendFrame(frame: SpdyFrame): Promise<void> {
    return this.#enqueueOutput(() => frame)
  }

  sendHeaders(
    type: 'syn_reply' | 'headers',
    streamId: number,
    headers: HeaderInput,
    flags: number,
  ): Promise<void> {
    return this.#enqueueOutput(async () => ({
      type,
      streamId,
      flags,
      headerBlock: await this.#compressor.compress(headers),
    }))
  }

  forget(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id)
  }

  maybeForget(stream: SpdyStream): void {
    if (stream.fullyClosed) this.forget(stream)
  }

  /**
   * Backpressure: while any stream's reader is saturated the socket is paused; it resumes when
   * every such stream has asked for more, ended or closed (else one finished stream could stall
   * the whole connection).
   */
  unsaturate(stream: SpdyStream): void {
    if (!this.#saturated.delete(stream) || this.#saturated.size > 0) return
    if (this.#open) this.#socket.resume()
  }

  // --- internals ---

  #enqueueOutput(make: () => SpdyFrame | Promise<SpdyFrame>): Promise<void> {
    const job = this.#out.then(async () => {
      if (!this.#open) throw new SpdyProtocolError('session is closed')
      const frame = await make()
      this.#onFrame?.(frame, 'out')
      const bytes = encodeFrame(frame)
      if (!this.#socket.write(bytes)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.#socket.off('drain', done)
            this.#socket.off('close', done)
            resolve()
          }
          this.#socket.on('drain', done)
          this.#socket.on('close', done)
        })
      }
    })
    this.#out = job.catch(() => undefined)
    return job
  }

  #enqueueInput(work: () => void | Promise<void>): void {
    this.#in = this.#in.then(work).catch((err: unknown) => this.#protocolError(err))
  }

  #receive(chunk: Buffer): void {
    let frames: SpdyFrame[]
    try {
      frames = this.#parser.push(chunk)
    } catch (err) {
      this.#enqueueInput(() => {
        throw err
      })
      return
    }
    for (const frame of frames) this.#enqueueInput(() => this.#handle(frame))
  }

  #protocolError(err: unknown): void {
    if (!this.#open) return
    const error =
      err instanceof SpdyProtocolError
        ? err
        : new SpdyProtocolError(err instanceof Error ? err.message : String(err))
    this.emit('protocolError', error)
    void this.sendFrame({
      type: 'goaway',
      lastGoodStreamId: this.#lastPeerStreamId,
      status: GOAWAY_PROTOCOL_ERROR,
    })
      .catch(() => undefined)
      .finally(() => this.destroy())
  }

  #isPeerId(id: number): boolean {
    return this.#role === 'server' ? id % 2 === 1 : id % 2 === 0
  }

  async #handle(frame: SpdyFrame): Promise<void> {
    this.#onFrame?.(frame, 'in')
    switch (frame.type) {
      case 'syn_stream': {
        const headers = this.#decompressor.decompress(frame.headerBlock)
        if (!this.#isPeerId(frame.streamId) || frame.streamId <= this.#lastPeerStreamId) {
          throw new SpdyProtocolError(
            `SYN_STREAM with stream id ${frame.streamId} out of order or of the wrong parity`,
          )
        }
        this.#lastPeerStreamId = frame.streamId
        if (this.#goingAway) {
          await this.sendFrame({
            type: 'rst_stream',
            streamId: frame.streamId,
            status: RstStatus.REFUSED_STREAM,
          })
          return
        }
        const stream = new SpdyStream(this, frame.streamId, headers)
        this.#streams.set(frame.streamId, stream)
        if (frame.flags & FLAG_UNIDIRECTIONAL) stream.markLocalEnded()
        if (frame.flags & FLAG_FIN) stream.remoteEnd()
        this.emit('stream', stream)
        return
      }
      case 'syn_reply': {
        const headers = this.#decompressor.decompress(frame.headerBlock)
        const waiter = this.#awaitingReply.get(frame.streamId)
        if (!waiter) {
          await this.sendFrame({
            type: 'rst_stream',
            streamId: frame.streamId,
            status: RstStatus.STREAM_IN_USE,
          })
          return
        }
        this.#awaitingReply.delete(frame.streamId)
        waiter.resolve(headers)
        if (frame.flags & FLAG_FIN) this.#streams.get(frame.streamId)?.remoteEnd()
        return
      }
      case 'headers': {
        this.#decompressor.decompress(frame.headerBlock)
        if (frame.flags & FLAG_FIN) this.#streams.get(frame.streamId)?.remoteEnd()
        return
      }
      case 'data': {
        const stream = this.#streams.get(frame.streamId)
        if (!stream) {
          await this.sendFrame({
            type: 'rst_stream',
            streamId: frame.streamId,
            status: RstStatus.INVALID_STREAM,
          })
          return
        }
        if (
          !stream.deliver(frame.data, (frame.flags & FLAG_FIN) !== 0) &&
          !stream.readableEnded &&
          !stream.destroyed
        ) {
          this.#saturated.add(stream)
          this.#socket.pause()
        }
        return
      }
      case 'rst_stream': {
        const waiter = this.#awaitingReply.get(frame.streamId)
        if (waiter) {
          this.#awaitingReply.delete(frame.streamId)
          waiter.reject(
            new SpdyProtocolError(`peer refused stream ${frame.streamId} (status ${frame.status})`),
          )
        }
        const stream = this.#streams.get(frame.streamId)
        if (stream) {
          stream.resetStatus = frame.status
          stream.markLocalEnded()
          stream.remoteEnd()
          stream.destroy()
        }
        return
      }
      case 'ping': {
        if (this.#isPeerId(frame.id)) await this.sendFrame(frame)
        else this.#pings.get(frame.id)?.()
        this.#pings.delete(frame.id)
        return
      }
      case 'goaway':
        this.#goingAway = true
        this.emit('goaway', frame.status)
        return
      case 'settings':
      case 'window_update':
      case 'unknown':
        return
    }
  }

  #peerEnded(): void {
    this.#parser.end()
    for (const stream of this.#streams.values()) stream.remoteEnd()
    this.#socket.end()
  }

  #shutdown(): void {
    if (!this.#open) return
    this.#open = false
    const closed = new SpdyProtocolError('session closed')
    for (const waiter of this.#awaitingReply.values()) waiter.reject(closed)
    this.#awaitingReply.clear()
    for (const stream of this.#streams.values()) {
      stream.remoteEnd()
      stream.destroy()
    }
    this.#streams.clear()
    this.#compressor.close()
    this.#decompressor.close()
    this.emit('close')
  }
}
