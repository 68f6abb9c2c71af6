// Runs a chain: its stages in order, each timed, then its terminal stage with the request's
// response filters (made here from the chain's list, ended here however the response ended).
// Any failure becomes a Kubernetes Status (src/pipeline/refusal.ts): stages never write error
// responses themselves.
import { GatewayError, isGatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { RequestContext } from './context.ts'
import { sendRefusal } from './refusal.ts'
import { ResponseFilters, type ResponseOutcome } from './response.ts'
import type { Chain } from './stage.ts'

export interface RunnerDeps {
  logger: Logger
  /** Called once per request after it ends, however it ends (audit hooks in here). */
  onComplete?: (ctx: RequestContext, error: GatewayError | undefined) => void
}

/** The client went away: nothing to answer, but the record says so. */
function clientClosed(stage: string): GatewayError {
  return new GatewayError('GW_CLIENT_CLOSED', `the client went away during ${stage}`)
}

/** Answers the request with the Status of `err` (or cuts a response already under way). */
export function respondWithError(ctx: RequestContext, err: GatewayError): void {
  ctx.responseStatus = err.status
  const target = ctx.res
    ? { res: ctx.res }
    : ctx.upgrade
      ? { socket: ctx.upgrade.socket }
      : undefined
  if (target) sendRefusal(target, ctx.id, err, ctx.warnings)
}

async function runTerminal(chain: Chain, ctx: RequestContext): Promise<void> {
  const response = await ResponseFilters.create(chain.filters, ctx)
  let outcome: ResponseOutcome | undefined
  try {
    await chain.terminal.run(ctx, response)
    if (ctx.responseStatus !== undefined)
      outcome = { status: ctx.responseStatus, responseBytes: ctx.responseBytes ?? 0 }
  } catch (e) {
    // the filters end with the failure (a log record says the request failed), then it is told
    await response.end(undefined).catch(() => undefined)
    throw e
  }
  await response.end(outcome)
}

export async function runChain(chain: Chain, ctx: RequestContext, deps: RunnerDeps): Promise<void> {
  let failure: GatewayError | undefined
  const steps = [
    ...chain.stages.map((s) => ({ name: s.name, run: () => s.run(ctx) })),
    { name: chain.terminal.name, run: () => runTerminal(chain, ctx) },
  ]
  for (const step of steps) {
    const t0 = performance.now()
    try {
      if (ctx.signal.aborted) throw clientClosed(step.name)
      await step.run()
    } catch (e) {
      failure = isGatewayError(e)
        ? e
        : ctx.signal.aborted
          ? clientClosed(step.name)
          : new GatewayError('GW_INTERNAL', 'Gatehouse failed to process the request', {
              cause: e,
              detail: String(e),
            })
      deps.logger.info(
        {
          requestId: ctx.id,
          stage: step.name,
          code: failure.code,
          detail: failure.detail ?? failure.message,
        },
        'request refused',
      )
      respondWithError(ctx, failure)
      break
    } finally {
      ctx.timings[step.name] = performance.now() - t0
    }
  }
  for (const cleanup of ctx.cleanups.splice(0)) cleanup()
  deps.onComplete?.(ctx, failure)
}
