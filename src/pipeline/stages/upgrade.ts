// upgrade: a request that asks to switch protocols is an upgrade only where Kubernetes has one
// (src/kube/upgrade.ts); any other is refused here, before policy, a body or the cluster is
// touched, and its connection is closed after the refusal (nothing the client writes after the
// head is ever read). Ordinary requests pass untouched.
import { GatewayError } from '../../errors/index.ts'
import { checkUpgrade } from '../../kube/upgrade.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function createUpgradeStage(): Stage {
  return {
    name: 'upgrade',
    run(ctx: RequestContext) {
      if (!ctx.upgrade || !ctx.requestInfo) return
      const verdict = checkUpgrade({
        method: ctx.req.method ?? 'GET',
        info: ctx.requestInfo,
        rawHeaders: ctx.req.rawHeaders,
      })
      if (verdict.ok) return
      throw new GatewayError(
        'GW_UPGRADE_UNSUPPORTED',
        `Gatehouse switches protocols (Upgrade: websocket or SPDY/3.1) only for pods/exec, pods/attach and pods/portforward (${verdict.reason}); send other requests without the Connection: Upgrade and Upgrade headers`,
      )
    },
  }
}
