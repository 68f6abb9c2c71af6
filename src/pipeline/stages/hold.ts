// hold: a request whose decision is `approve` waits here for people (or is refused at once with
// the approval's id, for rules with wait: retry). The body was read whole before authorize, so
// nothing streams while it waits; the client's connection simply stays open (no server timeout
// applies: src/http/server.ts sets requestTimeout 0).
import { GatewayError } from '../../errors/index.ts'
import type { ApprovalService } from '../../approval/service.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function createHoldStage(approvals: ApprovalService | undefined): Stage {
  return {
    name: 'hold',
    async run(ctx: RequestContext) {
      if (ctx.decision?.action !== 'approve') return
      if (!approvals)
        throw new GatewayError(
          'GW_APPROVAL_PENDING',
          'this request needs an approval, but approvals are not running on this Gatehouse',
        )
      await approvals.hold(ctx)
    },
  }
}
