// The terminal stage for ordinary requests: stream the request to the API server and the
// response back, with backpressure, no body or idle timeout (watches and log follows live as
// long as the client keeps them), and upstream work aborted when the client goes away.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
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
  const headers = relayableResponseHeaders(upstream.headers)
  headers['audit-id'] ??= opts.requestId
  if (opts.warnings?.length) {
    const existing = headers['warning']
    const list =
      existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
    headers['warning'] = [...list, ...opts.warnings.map(warningValue)]
  }
  res.writeHead(upstream.statusCode, headers)
  // Responses without a length may be streams (watches, log follows) whose first bytes can take
  // minutes: send the headers now so clients see the stream start. Sized responses go out with
  // their body in one write.
  if (upstream.headers['content-length'] === undefined) res.flushHeaders()
  let responseBytes = 0
  const capture = opts.captureBytes ?? 0
  const head: Buffer[] = []
  let headBytes = 0
  if (opts.abortable)
    opts.abortable.abort = () => {
      upstream.body.destroy()
      res.destroy()
    }
  const onChunk = opts.bodyTap?.(upstream.statusCode)
  upstream.body.on('data', (c: Buffer) => {
    onChunk?.(c)
    responseBytes += c.length
    if (headBytes < capture) {
      const part = c.subarray(0, capture - headBytes)
      head.push(part)
      headBytes += part.length
    }
  })
  try {
    await pipeline(upstream.body, res)
  } catch {
    // Client went away or upstream broke mid-stream: nothing more to send; make sure both close.
    upstream.body.destroy()
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

/** RFC 7234 warn-value with code 299 (kubectl prints the text as `Warning: ...`). */
export function warningValue(text: string): string {
  return `299 - "${text.replace(/["\\]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`
}
