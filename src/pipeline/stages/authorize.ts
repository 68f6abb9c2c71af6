// authorize: Identity × request → Decision. Until policies arrive (issue #4) every authenticated
// request is allowed here and the cluster's RBAC decides for the impersonated identity; what is
// refused already is client impersonation, which would let a caller choose its own identity.
import { GatewayError } from '../../errors/index.ts'
import { isImpersonationHeader } from '../../upstream/headers.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function createAuthorizeStage(): Stage {
  return {
    name: 'authorize',
    run(ctx: RequestContext) {
      const raw = ctx.req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) {
        if (isImpersonationHeader(raw[i]!)) {
          ctx.decision = { action: 'deny', rule: 'builtin:client-impersonation' }
          throw new GatewayError(
            'GW_AUTHZ_IMPERSONATION_REFUSED',
            `impersonation (kubectl --as/--as-group, header ${raw[i]}) is not allowed through Gatehouse: it acts as your authenticated identity`,
          )
        }
      }
      ctx.decision = { action: 'allow', rule: 'builtin:authenticated' }
    },
  }
}
