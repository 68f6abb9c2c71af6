// Forwarding of ordinary requests: the request (its body already read by the readBody stage)
// to the API server and the response back, with backpressure, no body or idle timeout
// (watches and log follows live as long as the client keeps them), and upstream work aborted
// when the client goes away. What the response side does to the answer (masking, recording,
// the audit head, warnings) comes in as ResponseHooks (the pipeline's response filters).
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { request, errors as undiciErrors } from 'undici'
import { GatewayError } from '../errors/index.ts'
import type { UpstreamCluster } from './cluster.ts'
import { relayableResponseHeaders, warningValue } from './headers.ts'

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

/** What the API server answered, before any byte of it reached the client. */
export interface ResponseHead {
  readonly status: number
  readonly headers: IncomingHttpHeaders
}

/**
 * A rewrite of the response body (masking). Gatehouse holds the head back until the body is
 * done or HOLD_BYTES of it are ready, so the head can say what was changed; streams (watches,
 * log follows) get their head at once.
 */
export interface BodyRewrite {
  transform: Transform
  /** A stream (watch, log follow): the head goes out at once, nothing is held back. */
  streaming: boolean
}

/** What the response side does with the answer (src/pipeline/response.ts implements it). */
export interface ResponseHooks {
  /** The upstream request headers to send instead of these. */
  requestHeaders(headers: readonly string[]): readonly string[]
  /** The body rewrite of this response, if any (throws to refuse it before the head goes out). */
  onHead(head: ResponseHead): BodyRewrite | undefined
  onUpstreamData(chunk: Buffer): void
  onClientData(chunk: Buffer): void
  /** `Warning` texts; `complete`: the whole body went through before the head went out. */
  warnings(complete: boolean): readonly string[]
  /** How to cut the response short, once it started (a recording limit). */
  onAbort(abort: () => void): void
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
}

export interface ForwardOptions {
  cluster: UpstreamCluster
  req: IncomingMessage
  res: ServerResponse
  path: string
  headers: readonly string[]
  requestId: string
  /** Aborted when the client goes away: queued or in-flight upstream work stops at once. */
  signal: AbortSignal
  /** A long-running request (watch, log, proxy): sent through the cluster's stream pool. */
  longRunning: boolean
  /** A client that takes nothing of the response for this long is cut off. */
  sendTimeoutMs: number
  /** The request body, read whole by the readBody stage; null: the request has none. */
  body: Buffer | null
  response: ResponseHooks
}

type UpstreamResponse = Awaited<ReturnType<typeof request>>

export async function forwardRequest(opts: ForwardOptions): Promise<ForwardResult> {
  const { cluster, req, res } = opts
  const method = (req.method ?? 'GET').toUpperCase()
  const hooks = opts.response
  const gone = (): ForwardResult => ({
    status: 499,
    requestBytes: 0,
    responseBytes: 0,
    sentBytes: 0,
    complete: false,
  })
  // A stream reset while the request waited for authentication or a pool slot: send nothing.
  if (opts.signal.aborted) return gone()
  const signal = opts.signal
  const requestBytes = opts.body?.length ?? 0
  let upstream: UpstreamResponse
  try {
    // origin + path: the path goes upstream byte for byte (no URL re-parsing or normalising).
    upstream = await (opts.longRunning ? cluster.streams : cluster.agent).request({
      origin: cluster.server.origin,
      path: opts.path,
      method: method,
      headers: [...hooks.requestHeaders(opts.headers)],
      body: opts.body,
      signal,
      headersTimeout: cluster.config.upstreamTimeouts.headersMs,
      bodyTimeout: 0,
    })
  } catch (e) {
    if (signal.aborted) return { ...gone(), requestBytes }
    throw upstreamError(cluster, e)
  }
  let rewrite: BodyRewrite | undefined
  try {
    rewrite = hooks.onHead({ status: upstream.statusCode, headers: upstream.headers })
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
  let responseBytes = 0
  hooks.onAbort(() => {
    upstream.body.destroy()
    res.destroy()
  })
  upstream.body.on('data', (c: Buffer) => {
    hooks.onUpstreamData(c)
    responseBytes += c.length
  })
  let complete = false
  try {
    if (rewrite) await deliverRewritten(upstream, rewrite, sink, headers, hooks)
    else await deliverPlain(upstream, sink, headers, hooks)
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
    requestBytes,
    responseBytes,
    sentBytes: sink.sent,
    complete,
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
  hooks: ResponseHooks,
): Promise<void> {
  sink.writeHead(
    upstream.statusCode,
    withWarnings(headers, hooks.warnings(true)),
    upstream.headers['content-length'] === undefined,
  )
  const buffered = upstreamBuffer()
  pipeline(upstream.body, buffered).catch(() => {
    // the iterator below sees the error
  })
  for await (const chunk of buffered as AsyncIterable<Buffer>) {
    hooks.onClientData(chunk)
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
async function deliverRewritten(
  upstream: UpstreamResponse,
  rewrite: BodyRewrite,
  sink: ClientSink,
  headers: Record<string, string | string[]>,
  hooks: ResponseHooks,
): Promise<void> {
  delete headers['content-length']
  const t = rewrite.transform
  pipeline(upstream.body, upstreamBuffer(), t).catch(() => {
    // the iterator below sees the error
  })
  const chunks = t[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const held: Buffer[] = []
  let holding = 0
  let complete = false
  try {
    try {
      while (!rewrite.streaming && holding < HOLD_BYTES) {
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
    if (complete) headers['content-length'] = String(holding)
    sink.writeHead(
      upstream.statusCode,
      withWarnings(headers, hooks.warnings(complete)),
      rewrite.streaming,
    )
    // what is held counts against the budget until the client has taken it
    for (let c = held.shift(); c; c = held.shift()) {
      hooks.onClientData(c)
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
      hooks.onClientData(r.value)
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
