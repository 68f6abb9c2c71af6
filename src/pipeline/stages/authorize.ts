// authorize: Identity × request → Decision. Until policies arrive (issue #4) every authenticated
// request is allowed here and the cluster's RBAC decides for the impersonated identity; what is
// refused already is client impersonation, which would let a caller choose its own identity.
import { GatewayError } from '../../errors/index.ts'
import { isImpersonationHeader } from '../../upstream/headers.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

/**
 * API discovery (GET /api, /apis, /apis/<group>[/<version>], /version, /openapi/...) is the same
 * for every caller. kubectl sends its --as headers there too, and prints a refused discovery
 * as "Error from server (Forbidden): unknown"; answering discovery as the authenticated caller
 * (the headers are never forwarded) lets the actual request carry the clear refusal.
 */
function isDiscovery(ctx: RequestContext): boolean {
  const info = ctx.requestInfo
  if (!info || info.isResourceRequest || info.verb !== 'get') return false
  return /^\/(api(\/v1)?|apis(\/[^/]+(\/[^/]+)?)?|version|openapi\/.*)\/?$/.test(info.path)
}

export function createAuthorizeStage(): Stage {
  return {
    name: 'authorize',
    run(ctx: RequestContext) {
      if (isDiscovery(ctx)) {
        ctx.decision = { action: 'allow', rule: 'builtin:discovery' }
        return
      }
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
