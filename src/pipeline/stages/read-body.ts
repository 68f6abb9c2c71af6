// readBody: the body of a write, read whole before policy sees it (a `when` condition may read
// the object, and the audit record may keep it), bounded by limits.maxRequestBodyBytes, and
// decoded once, strictly (src/kube/body.ts): a body the API server could read differently from
// Gatehouse is refused here, so policy, approvals, masking and the audit record all see the one
// object the cluster will see. Reads and upgrades have no body and skip this stage; the body
// then goes upstream unchanged, byte for byte.
import { GatewayError } from '../../errors/index.ts'
import { decodeBody, requestObjectOf, type RequestObject } from '../../kube/body.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS'])

export function hasRequestBody(ctx: RequestContext): boolean {
  if (ctx.upgrade) return false
  const h = ctx.req.headers
  return (
    !METHODS_WITHOUT_BODY.has((ctx.req.method ?? 'GET').toUpperCase()) ||
    h['content-length'] !== undefined ||
    h['transfer-encoding'] !== undefined
  )
}

/**
 * Reads the whole body, bounded in size and in idle time: a body that sends nothing for
 * `idleMs` is refused with 408 (a declared length that never arrives must not hold the request
 * forever), and the connection is closed after the answer, since the rest of that body can
 * never be told apart from a next request.
 */
function readAll(ctx: RequestContext, limit: number, idleMs: number): Promise<Buffer> {
  const declared = Number(ctx.req.headers['content-length'] ?? '0')
  if (declared > limit)
    throw new GatewayError(
      'GW_REQUEST_BODY_TOO_LARGE',
      `request body of ${declared} bytes exceeds the limit of ${limit} bytes`,
    )
  const req = ctx.req
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const fail = (e: Error): void => {
      done()
      if (ctx.res && 'shouldKeepAlive' in ctx.res) ctx.res.shouldKeepAlive = false
      reject(e)
    }
    const timer = setTimeout(
      () =>
        fail(
          new GatewayError(
            'GW_REQUEST_TIMEOUT',
            `the request body sent nothing for ${idleMs} ms (limits.requestBodyIdleMs); ${size} of ${Number.isFinite(declared) && declared > 0 ? declared : 'an unknown number of'} bytes arrived`,
          ),
        ),
      idleMs,
    )
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        fail(
          new GatewayError(
            'GW_REQUEST_BODY_TOO_LARGE',
            `request body exceeds the limit of ${limit} bytes`,
          ),
        )
        return
      }
      chunks.push(chunk)
      timer.refresh()
    }
    const onEnd = (): void => {
      done()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (e: Error): void => fail(e)
    const onAbort = (): void => fail(new Error('the client went away while sending the body'))
    const done = (): void => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      ctx.signal.removeEventListener('abort', onAbort)
    }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', onError)
    ctx.signal.addEventListener('abort', onAbort)
  })
}

/**
 * The request object for policy conditions: the body decoded by readBody, null without one.
 * Protobuf bodies (kubectl and client-go send them for built-in types) are unavailable, with the
 * reason: a condition that needs them gets the object from a dry run, or fails closed.
 */
export function decodeRequestObject(ctx: RequestContext): RequestObject {
  // a context built outside the pipeline (tests, tools) decodes its body the same way
  return (ctx.requestObject ??= requestObjectOf(ctx.requestBody, ctx.req.headers['content-type']))
}

export function createReadBodyStage(opts: { maxBodyBytes: number; idleMs: number }): Stage {
  return {
    name: 'readBody',
    async run(ctx: RequestContext) {
      if (!hasRequestBody(ctx)) return
      try {
        ctx.requestBody = await readAll(ctx, opts.maxBodyBytes, opts.idleMs)
      } catch (e) {
        if (e instanceof GatewayError) throw e
        throw new GatewayError('GW_REQUEST_INVALID', 'the request body could not be read', {
          detail: String(e),
        })
      }
      if (ctx.requestBody.length === 0) return
      const decoded = decodeBody(ctx.requestBody, ctx.req.headers['content-type'])
      if (decoded.ok) ctx.requestObject = { value: decoded.value, format: decoded.format }
      else if ('undecoded' in decoded) ctx.requestObject = { unavailable: decoded.undecoded }
      else if (decoded.tooLarge)
        throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', decoded.refused)
      else throw new GatewayError('GW_REQUEST_BODY_AMBIGUOUS', decoded.refused)
    },
  }
}
