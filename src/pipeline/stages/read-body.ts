// readBody: the body of a write, read whole before policy sees it (a `when` condition may read
// the object, and the audit record may keep it), bounded by limits.maxRequestBodyBytes. Reads
// and upgrades have no body and skip this stage; the body then goes upstream unchanged, byte
// for byte.
import { parse as parseYaml } from 'yaml'
import { GatewayError } from '../../errors/index.ts'
import type { RequestObject } from '../../policy/index.ts'
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
 * The request object for policy conditions: JSON, or YAML (server-side apply); null without a
 * body. Protobuf bodies (kubectl and client-go send them for built-in types) and bodies that do
 * not parse are unavailable, with the reason: a condition that needs them fails, so a deny rule
 * applies and an allow rule does not (fail closed).
 */
const decoded = new WeakMap<RequestContext, RequestObject>()
export function decodeRequestObject(ctx: RequestContext): RequestObject {
  const cached = decoded.get(ctx)
  if (cached) return cached
  let result: RequestObject = { value: null }
  const body = ctx.requestBody
  if (body?.length) {
    const type = (ctx.req.headers['content-type'] ?? '').toLowerCase()
    try {
      if (/yaml/.test(type))
        result = { value: parseYaml(body.toString('utf8'), { maxAliasCount: 50 }) as unknown }
      else if (/json/.test(type)) result = { value: JSON.parse(body.toString('utf8')) as unknown }
      else
        result = {
          unavailable: `the body is ${type || 'of no declared type'}, not JSON or YAML (kubectl and client-go send protobuf for built-in types)`,
        }
    } catch (e) {
      result = {
        unavailable: `the ${type} body does not parse: ${(e as Error).message.split('\n')[0]}`,
      }
    }
  }
  decoded.set(ctx, result)
  return result
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
    },
  }
}
