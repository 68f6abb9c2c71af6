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

export interface ForwardResult {
  status: number
  requestBytes: number
  responseBytes: number
  /** The first `captureBytes` of the response body, when asked for. */
  captured?: { contentType: string; head: Buffer; bytes: number }
}

export async function forwardRequest(opts: {
  cluster: UpstreamCluster
  req: IncomingMessage
  res: ServerResponse
  path: string
  headers: string[]
  maxBodyBytes: number
  requestId: string
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
}): Promise<ForwardResult> {
  const { cluster, req, res } = opts
  const method = (req.method ?? 'GET').toUpperCase()
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > opts.maxBodyBytes) {
    throw new GatewayError(
      'GW_REQUEST_BODY_TOO_LARGE',
      `request body of ${declared} bytes exceeds the limit of ${opts.maxBodyBytes} bytes`,
    )
  }
  const abort = new AbortController()
  const onClientGone = (): void => {
    if (!res.writableFinished) abort.abort()
  }
  res.once('close', onClientGone)
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
  let upstream: Awaited<ReturnType<typeof request>>
  try {
    // origin + path: the path goes upstream byte for byte (no URL re-parsing or normalising).
    upstream = await cluster.agent.request({
      origin: cluster.server.origin,
      path: opts.path,
      method: method,
      headers: opts.headers,
      body,
      signal: abort.signal,
      headersTimeout: cluster.config.upstreamTimeouts.headersMs,
      bodyTimeout: 0,
    })
  } catch (e) {
    res.off('close', onClientGone)
    if (bodyError) throw bodyError
    if (abort.signal.aborted) return { status: 499, requestBytes: limit.bytes, responseBytes: 0 }
    throw upstreamError(cluster, e)
  }
  let filter: ResponseFilter | undefined
  try {
    filter = opts.filter?.(upstream.statusCode, upstream.headers)
  } catch (e) {
    // refused before a byte went out: the client gets a Status
    res.off('close', onClientGone)
    upstream.body.destroy()
    throw e
  }
  const headers = relayableResponseHeaders(upstream.headers)
  headers['audit-id'] ??= opts.requestId
  const warnings = [...(opts.warnings ?? [])]
  let responseBytes = 0
  const capture = opts.captureBytes ?? 0
  const head: Buffer[] = []
  let headBytes = 0
  /** The audit record keeps the head of what the client received. */
  const captureChunk = (c: Buffer): void => {
    if (headBytes < capture) {
      const part = c.subarray(0, capture - headBytes)
      head.push(part)
      headBytes += part.length
    }
  }
  if (opts.abortable)
    opts.abortable.abort = () => {
      upstream.body.destroy()
      res.destroy()
    }
  const onChunk = opts.bodyTap?.(upstream.statusCode)
  upstream.body.on('data', (c: Buffer) => {
    onChunk?.(c)
    responseBytes += c.length
    if (!filter) captureChunk(c)
  })
  try {
    if (filter) await deliverFiltered(upstream, filter, res, headers, warnings, captureChunk)
    else {
      writeHead(res, upstream.statusCode, headers, warnings)
      // Responses without a length may be streams (watches, log follows) whose first bytes can
      // take minutes: send the headers now so clients see the stream start. Sized responses go
      // out with their body in one write.
      if (upstream.headers['content-length'] === undefined) res.flushHeaders()
      await pipeline(upstream.body, upstreamBuffer(), res)
    }
  } catch (e) {
    // Refused before the head went out: the client gets a Status. Otherwise the client went
    // away or upstream broke mid-stream: nothing more to send; make sure both close.
    upstream.body.destroy()
    if (e instanceof GatewayError && !res.headersSent) {
      res.off('close', onClientGone)
      throw e
    }
    res.destroy()
  } finally {
    res.off('close', onClientGone)
  }
  return {
    status: upstream.statusCode,
    requestBytes: opts.body?.length ?? limit.bytes,
    responseBytes,
    ...(capture
      ? {
          captured: {
            contentType: String(upstream.headers['content-type'] ?? ''),
            head: Buffer.concat(head),
            bytes: responseBytes,
          },
        }
      : {}),
  }
}

function writeHead(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  warnings: readonly string[],
): void {
  if (warnings.length) {
    const existing = headers['warning']
    const list =
      existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
    headers['warning'] = [...list, ...warnings.map(warningValue)]
  }
  res.writeHead(status, headers)
}

/**
 * Sends a filtered body: held back up to HOLD_BYTES so the head can carry the filter's warning
 * and an exact length, streamed after that with backpressure. A filter error before the head
 * went out is a 502 Status; after it, the response is cut (the client never gets unfiltered
 * bytes).
 */
async function deliverFiltered(
  upstream: { statusCode: number; body: NodeJS.ReadableStream & { destroy(): void } },
  filter: ResponseFilter,
  res: ServerResponse,
  headers: Record<string, string | string[]>,
  warnings: string[],
  captureChunk: (c: Buffer) => void,
): Promise<void> {
  delete headers['content-length']
  // the response ended by Gatehouse (shutdown ends watches) or cut by the client: stop reading
  res.once('close', () => upstream.body.destroy())
  const t = filter.transform
  pipeline(upstream.body, upstreamBuffer(), t).catch(() => {
    // the iterator below sees the error
  })
  const chunks = t[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const held: Buffer[] = []
  let heldBytes = 0
  let complete = false
  try {
    while (!filter.streaming && heldBytes < HOLD_BYTES) {
      const r = await chunks.next()
      if (r.done) {
        complete = true
        break
      }
      held.push(r.value)
      heldBytes += r.value.length
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
  if (complete) headers['content-length'] = String(heldBytes)
  writeHead(res, upstream.statusCode, headers, warnings)
  if (filter.streaming) res.flushHeaders()
  for (const c of held) {
    captureChunk(c)
    res.write(c)
  }
  if (complete) {
    res.end()
    return finishedOrClosed(res)
  }
  for (;;) {
    const r = await chunks.next()
    if (r.done) break
    captureChunk(r.value)
    if (!res.write(r.value)) await drainedOrClosed(res)
    if (res.destroyed) throw new Error('the client went away')
  }
  res.end()
  await finishedOrClosed(res)
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}

async function finishedOrClosed(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('finish', done)
      res.off('close', done)
      resolve()
    }
    res.once('finish', done)
    res.once('close', done)
  })
}

/** RFC 7234 warn-value with code 299 (kubectl prints the text as `Warning: ...`). */
export function warningValue(text: string): string {
  return `299 - "${text.replace(/["\\]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`
}
