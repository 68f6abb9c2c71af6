// limit: one slot of the caller's concurrency bounds (src/pipeline/concurrency.ts), or 429 with
// Retry-After. After authenticate (bounds are per identity) and before any body is read or
// anything is sent upstream; the slot is released when the request ends, however it ends.
import { GatewayError } from '../../errors/index.ts'
import { isLongRunning } from '../../kube/long-running.ts'
import type { ConcurrencyGate } from '../concurrency.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function createLimitStage(gate: ConcurrencyGate): Stage {
  return {
    name: 'limit',
    run(ctx: RequestContext) {
      const stream = ctx.upgrade !== undefined || isLongRunning(ctx.requestInfo!)
      const slot = gate.acquire(ctx.identity!.name, stream)
      if (!slot.ok) throw new GatewayError('GW_CONCURRENCY_LIMIT', slot.reason)
      ctx.cleanups.push(slot.release)
    },
  }
}
