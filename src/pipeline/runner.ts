// Runs the stages in order, times each one, and turns any failure into a Kubernetes Status:
// stages never write error responses themselves.
import { GatewayError, isGatewayError, rawStatusResponse, toKubeStatus } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import { warningValue } from '../upstream/forward.ts'
import type { RequestContext } from './context.ts'
import type { Stage } from './stage.ts'

export interface RunnerDeps {
  logger: Logger
  /** Called once per request after it ends, however it ends (audit hooks in here). */
  onComplete?: (ctx: RequestContext, error: GatewayError | undefined) => void
}

/** The client went away: nothing to answer, but the record says so. */
function clientClosed(stage: string): GatewayError {
  return new GatewayError('GW_CLIENT_CLOSED', `the client went away during ${stage}`)
}

export function respondWithError(ctx: RequestContext, err: GatewayError): void {
  ctx.responseStatus = err.status
  if (err.code === 'GW_CLIENT_CLOSED') return
  const status = toKubeStatus(err, ctx.id)
  if (ctx.res) {
    if (ctx.res.headersSent) {
      ctx.res.destroy()
      return
    }
    const body = JSON.stringify(status)
    const headers: Record<string, string | string[] | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'audit-id': ctx.id,
      ...(ctx.warnings.length ? { warning: ctx.warnings.map(warningValue) } : {}),
      ...(err.status === 401 ? { 'www-authenticate': 'Bearer realm="gatehouse"' } : {}),
      ...(err.retryAfterSeconds ? { 'retry-after': err.retryAfterSeconds } : {}),
    }
    ctx.res.writeHead(err.status, headers)
    ctx.res.end(body)
  } else if (ctx.upgrade) {
    const { socket } = ctx.upgrade
    if (socket.writable)
      socket.end(
        rawStatusResponse(status, {
          'Audit-ID': ctx.id,
          ...(err.retryAfterSeconds ? { 'Retry-After': String(err.retryAfterSeconds) } : {}),
        }),
      )
    else socket.destroy()
  }
}

export async function runStages(
  stages: readonly Stage[],
  ctx: RequestContext,
  deps: RunnerDeps,
): Promise<void> {
  let failure: GatewayError | undefined
  for (const stage of stages) {
    const t0 = performance.now()
    try {
      if (ctx.signal.aborted) throw clientClosed(stage.name)
      await stage.run(ctx)
    } catch (e) {
      failure = isGatewayError(e)
        ? e
        : ctx.signal.aborted
          ? clientClosed(stage.name)
          : new GatewayError('GW_INTERNAL', 'Gatehouse failed to process the request', {
              cause: e,
              detail: String(e),
            })
      deps.logger.info(
        {
          requestId: ctx.id,
          stage: stage.name,
          code: failure.code,
          detail: failure.detail ?? failure.message,
        },
        'request refused',
      )
      respondWithError(ctx, failure)
      break
    } finally {
      ctx.timings[stage.name] = performance.now() - t0
    }
  }
  for (const cleanup of ctx.cleanups.splice(0)) cleanup()
  deps.onComplete?.(ctx, failure)
}
