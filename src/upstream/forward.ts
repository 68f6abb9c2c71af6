// The terminal stage for ordinary requests: stream the request to the API server and the
// response back, with backpressure, no body or idle timeout (watches and log follows live as
// long as the client keeps them), and upstream work aborted when the client goes away.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { request, errors as undiciErrors } from 'undici'
import { GatewayError } from '../errors/index.ts'
import type { UpstreamCluster } from './cluster.ts'
import { relayableResponseHeaders } from './headers.ts'

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Counts request bytes and fails the stream once the limit is passed. */
class BodyLimit extends Transform {
  bytes = 0
  readonly #limit: number
  constructor(limit: number) {
    super()
    this.#limit = limit
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.#limit)
      cb(
        new GatewayError(
          'GW_REQUEST_BODY_TOO_LARGE',
          `request body exceeds the limit of ${this.#limit} bytes`,
        ),
      )
    else cb(null, chunk)
  }
}

export function upstreamError(cluster: UpstreamCluster, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e
  const code = (e as { code?: string }).code ?? ''
  const msg = (e as Error).message ?? String(e)
  if (e instanceof undiciErrors.HeadersTimeoutError || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new GatewayError(
      'GW_UPSTREAM_TIMEOUT',
      `the API server of cluster '${cluster.name}' did not answer in time`,
      { detail: msg, cause: e },
    )
  }
  if (/CERT|SSL|TLS|self.signed|UNABLE_TO_VERIFY|ERR_TLS/i.test(code + msg)) {
    return new GatewayError(
      'GW_UPSTREAM_BAD_GATEWAY',
      `Gatehouse could not verify the TLS certificate of cluster '${cluster.name}'`,
      { detail: `${code} ${msg}`, cause: e },
    )
  }
  if (
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT|ETIMEDOUT/.test(
      code + msg,
    )
  ) {
    return new GatewayError(
      'GW_UPSTREAM_UNAVAILABLE',
      `the API server of cluster '${cluster.name}' is unreachable`,
      { detail: `${code} ${msg}`, cause: e },
    )
  }
  return new GatewayError(
    'GW_UPSTREAM_BAD_GATEWAY',
    `the connection to the API server of cluster '${cluster.name}' failed`,
    { detail: `${code} ${msg}`, cause: e },
  )
}

/**
 * A rewrite of the response body (masking). Gatehouse holds the head back until the body is
 * done or HOLD_BYTES of it are ready, so the head can say what was changed; streams (watches,
 * log follows) get their head at once.
 */
export interface ResponseFilter {
  transform: Transform
  streaming: boolean
  /** `Warning` text for the head; `complete`: the whole body went through the filter. */
  warning(complete: boolean): string | undefined
}

/**
 * A buffer between undici's response body and a slower consumer (the client, a masker). undici
 * pauses its parser whenever the body's own buffer is full and, on resume, re-reads everything
 * the socket buffered meanwhile as one concatenated Buffer, putting back what it did not parse.
 * Paused after every HTTP chunk (what a slower client causes), that copy grows with each cycle:
 * a 100 MB pod log went through at 5 MB/s, 50 % of the CPU in Readable's fromList (profiled).
 * With room for 1 MiB the parser runs through what arrived in one go.
 */
const UPSTREAM_BUFFER_BYTES = 1024 * 1024

function upstreamBuffer(): PassThrough {
  return new PassThrough({ highWaterMark: UPSTREAM_BUFFER_BYTES })
}

/** The most of a filtered body held back before its head goes out (memory stays bounded). */
const HOLD_BYTES = 4 * 1024 * 1024

/**
 * What all filtered responses of this process may hold back at once. Past it a response
 * streams at once (its Warning then says "masked values" without a count): 300 slow or
 * never-reading clients must not make Gatehouse hold 300 x HOLD_BYTES.
 */
const HOLD_BUDGET_BYTES = 256 * 1024 * 1024
let heldBytesInProcess = 0

export interface ForwardResult {
  status: number
  requestBytes: number
  /** Bytes the API server sent (before any filter). */
  responseBytes: number
  /** Bytes handed to the client. */
  sentBytes: number
  /** The whole response reached the client side (not cut by a reset, a close or a timeout). */
  complete: boolean
  /** The first `captureBytes` of the response body, when asked for. */
  captured?: { contentType: string; head: Buffer; bytes: number }
}

export interface ForwardOptions {
  cluster: UpstreamCluster
  req: IncomingMessage
  res: ServerResponse
  path: string
  headers: string[]
  maxBodyBytes: number
  requestId: string
  /** Aborted when the client goes away: queued or in-flight upstream work stops at once. */
  signal: AbortSignal
  /** A long-running request (watch, log, proxy): sent through the cluster's stream pool. */
  longRunning: boolean
  /** A client that takes nothing of the response for this long is cut off. */
  sendTimeoutMs: number
  /** The request body, already read (readBody stage); otherwise the request streams through. */
  body?: Buffer
  /** `Warning` header values Gatehouse adds to the response. */
  warnings?: readonly string[]
  /** Keep up to this many bytes of the response body (for the audit record). */
  captureBytes?: number
  /** Given the status, may return a reader of every body chunk, in order (log recording). */
  bodyTap?: (status: number) => ((chunk: Buffer) => void) | undefined
  /** Set once the response started: aborts it (a recording limit), the client sees it end. */
  abortable?: { abort?: () => void }
  /** Given the upstream status and headers, a rewrite of the body (may throw to refuse). */
  filter?: (status: number, headers: IncomingHttpHeaders) => ResponseFilter | undefined
}

type UpstreamResponse = Awaited<ReturnType<typeof request>>

export async function forwardRequest(opts: ForwardOptions): Promise<ForwardResult> {
  const { cluster, req, res } = opts
  const method = (req.method ?? 'GET').toUpperCase()
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > opts.maxBodyBytes) {
    throw new GatewayError(
      'GW_REQUEST_BODY_TOO_LARGE',
      `request body of ${declared} bytes exceeds the limit of ${opts.maxBodyBytes} bytes`,
    )
  }
  const gone = (): ForwardResult => ({
    status: 499,
    requestBytes: 0,
    responseBytes: 0,
    sentBytes: 0,
    complete: false,
  })
  // A stream reset while the request waited for authentication or a pool slot: send nothing.
  if (opts.signal.aborted) return gone()
  const abort = new AbortController()
  const signal = AbortSignal.any([opts.signal, abort.signal])
  const limit = new BodyLimit(opts.maxBodyBytes)
  const hasBody =
    !METHODS_WITHOUT_BODY.has(method) ||
    req.headers['content-length'] !== undefined ||
    req.headers['transfer-encoding'] !== undefined
  let bodyError: Error | undefined
  const body = opts.body ?? (hasBody ? req.pipe(limit) : null)
  limit.on('error', (e: Error) => {
    bodyError = e
    abort.abort()
  })
  let upstream: UpstreamResponse
  try {
    // origin + path: the path goes upstream byte for byte (no URL re-parsing or normalising).
    upstream = await (opts.longRunning ? cluster.streams : cluster.agent).request({
      origin: cluster.server.origin,
      path: opts.path,
      method: method,
      headers: opts.headers,
      body,
      signal,
      headersTimeout: cluster.config.upstreamTimeouts.headersMs,
      bodyTimeout: 0,
    })
  } catch (e) {
    if (bodyError) throw bodyError
    if (signal.aborted) return { ...gone(), requestBytes: limit.bytes }
    throw upstreamError(cluster, e)
  }
  let filter: ResponseFilter | undefined
  try {
    filter = opts.filter?.(upstream.statusCode, upstream.headers)
  } catch (e) {
    // refused before a byte went out: the client gets a Status
    upstream.body.destroy()
    throw e
  }
  const sink = new ClientSink(res, signal, opts.sendTimeoutMs)
  // Whatever ends the response early (client gone, send timeout, a recording limit) stops
  // reading upstream at once: the upstream connection is freed, nothing more is buffered.
  const stopUpstream = (): void => {
    upstream.body.destroy()
  }
  signal.addEventListener('abort', stopUpstream, { once: true })
  // ... and so does a response ended from outside (shutdown ends watches)
  res.once('close', stopUpstream)
  const headers = relayableResponseHeaders(upstream.headers)
  headers['audit-id'] ??= opts.requestId
  const warnings = [...(opts.warnings ?? [])]
  let responseBytes = 0
  const capture = new Capture(opts.captureBytes ?? 0)
  if (opts.abortable)
    opts.abortable.abort = () => {
      upstream.body.destroy()
      res.destroy()
    }
  const onChunk = opts.bodyTap?.(upstream.statusCode)
  upstream.body.on('data', (c: Buffer) => {
    onChunk?.(c)
    responseBytes += c.length
  })
  let complete = false
  try {
    if (filter) await deliverFiltered(upstream, filter, sink, headers, warnings, capture)
    else await deliverPlain(upstream, sink, headers, warnings, capture)
    complete = true
  } catch (e) {
    // Refused before the head went out: the client gets a Status. Otherwise the client went
    // away, stalled, or upstream broke mid-stream: nothing more to send; make sure both close.
    upstream.body.destroy()
    if (e instanceof GatewayError && !res.headersSent) throw e
    sink.destroy()
  } finally {
    signal.removeEventListener('abort', stopUpstream)
    res.off('close', stopUpstream)
    sink.close()
  }
  return {
    status: upstream.statusCode,
    requestBytes: opts.body?.length ?? limit.bytes,
    responseBytes,
    sentBytes: sink.sent,
    complete,
    ...(capture.max
      ? {
          captured: {
            contentType: String(upstream.headers['content-type'] ?? ''),
            head: capture.head(),
            bytes: responseBytes,
          },
        }
      : {}),
  }
}

/** The head of what the client received, for the audit record. */
class Capture {
  readonly max: number
  readonly #parts: Buffer[] = []
  #bytes = 0
  constructor(max: number) {
    this.max = max
  }
  add(c: Buffer): void {
    if (this.#bytes >= this.max) return
    const part = c.subarray(0, this.max - this.#bytes)
    this.#parts.push(part)
    this.#bytes += part.length
  }
  head(): Buffer {
    return Buffer.concat(this.#parts)
  }
}

/**
 * The client side of a response, written with backpressure: a write that does not drain within
 * the send timeout, or a client that goes away, rejects the pending wait at once (a wait on a
 * `drain` that can no longer come would pin the response and its buffers forever).
 */
class ClientSink {
  sent = 0
  readonly #res: ServerResponse
  readonly #signal: AbortSignal
  readonly #timeoutMs: number
  #closed = false

  constructor(res: ServerResponse, signal: AbortSignal, timeoutMs: number) {
    this.#res = res
    this.#signal = signal
    this.#timeoutMs = timeoutMs
    res.once('close', this.#onClose)
  }

  readonly #onClose = (): void => {
    this.#closed = true
  }

  writeHead(status: number, headers: Record<string, string | string[]>, flush: boolean): void {
    this.#res.writeHead(status, headers)
    // Responses without a length may be streams (watches, log follows) whose first bytes can
    // take minutes: send the head now so clients see the stream start.
    if (flush) this.#res.flushHeaders()
  }

  async write(chunk: Buffer): Promise<void> {
    this.#check()
    this.sent += chunk.length
    if (this.#res.write(chunk)) return
    await this.#drained()
  }

  /** Ends the response; resolves when it is flushed or the client is gone (never hangs). */
  async end(): Promise<void> {
    this.#check()
    const res = this.#res
    await new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('finish', done)
        res.off('close', done)
        this.#signal.removeEventListener('abort', done)
        resolve()
      }
      res.once('finish', done)
      res.once('close', done)
      this.#signal.addEventListener('abort', done, { once: true })
      res.end()
    })
  }

  destroy(): void {
    this.#res.destroy()
  }

  close(): void {
    this.#res.off('close', this.#onClose)
  }

  #check(): void {
    if (this.#signal.aborted || this.#closed) throw new Error('the client went away')
    // ended from outside (shutdown ends watches)
    if (this.#res.writableEnded) throw new Error('the response was ended by Gatehouse')
  }

  #drained(): Promise<void> {
    const res = this.#res
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        res.off('drain', onDrain)
        res.off('close', onClose)
        this.#signal.removeEventListener('abort', onClose)
        if (err) reject(err)
        else resolve()
      }
      const onDrain = (): void => done()
      const onClose = (): void => done(new Error('the client went away'))
      const timer = setTimeout(() => {
        done(new Error(`the client read nothing for ${this.#timeoutMs} ms (limits.sendTimeoutMs)`))
      }, this.#timeoutMs)
      res.once('drain', onDrain)
      res.once('close', onClose)
      this.#signal.addEventListener('abort', onClose, { once: true })
    })
  }
}

async function deliverPlain(
  upstream: UpstreamResponse,
  sink: ClientSink,
  headers: Record<string, string | string[]>,
  warnings: readonly string[],
  capture: Capture,
): Promise<void> {
  sink.writeHead(
    upstream.statusCode,
    withWarnings(headers, warnings),
    upstream.headers['content-length'] === undefined,
  )
  const buffered = upstreamBuffer()
  pipeline(upstream.body, buffered).catch(() => {
    // the iterator below sees the error
  })
  for await (const chunk of buffered as AsyncIterable<Buffer>) {
    capture.add(chunk)
    await sink.write(chunk)
  }
  await sink.end()
}

/**
 * Sends a filtered body: held back up to HOLD_BYTES (within the process's hold budget) so the
 * head can carry the filter's warning and an exact length, streamed after that with
 * backpressure. A filter error before the head went out is a 502 Status; after it, the response
 * is cut (the client never gets unfiltered bytes).
 */
async function deliverFiltered(
  upstream: UpstreamResponse,
  filter: ResponseFilter,
  sink: ClientSink,
  headers: Record<string, string | string[]>,
  warnings: string[],
  capture: Capture,
): Promise<void> {
  delete headers['content-length']
  const t = filter.transform
  pipeline(upstream.body, upstreamBuffer(), t).catch(() => {
    // the iterator below sees the error
  })
  const chunks = t[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const held: Buffer[] = []
  let holding = 0
  let complete = false
  try {
    try {
      while (!filter.streaming && holding < HOLD_BYTES) {
        const r = await chunks.next()
        if (r.done) {
          complete = true
          break
        }
        held.push(r.value)
        holding += r.value.length
        heldBytesInProcess += r.value.length
        if (heldBytesInProcess > HOLD_BUDGET_BYTES) break
      }
    } catch (e) {
      throw new GatewayError(
        'GW_RESPONSE_UNMASKABLE',
        `Gatehouse could not mask the API server's response: ${(e as Error).message}`,
        { cause: e },
      )
    }
    const warning = filter.warning(complete)
    if (warning) warnings.push(warning)
    if (complete) headers['content-length'] = String(holding)
    sink.writeHead(upstream.statusCode, withWarnings(headers, warnings), filter.streaming)
    // what is held counts against the budget until the client has taken it
    for (let c = held.shift(); c; c = held.shift()) {
      capture.add(c)
      await sink.write(c)
      holding -= c.length
      heldBytesInProcess -= c.length
    }
  } finally {
    heldBytesInProcess -= holding
    held.length = 0
  }
  if (!complete) {
    for (;;) {
      const r = await chunks.next()
      if (r.done) break
      capture.add(r.value)
      await sink.write(r.value)
    }
  }
  await sink.end()
}

function withWarnings(
  headers: Record<string, string | string[]>,
  warnings: readonly string[],
): Record<string, string | string[]> {
  if (warnings.length) {
    const existing = headers['warning']
    const list =
      existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
    headers['warning'] = [...list, ...warnings.map(warningValue)]
  }
  return headers
}

/** RFC 7234 warn-value with code 299 (kubectl prints the text as `Warning: ...`). */
export function warningValue(text: string): string {
  return `299 - "${text.replace(/["\\]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`
}
