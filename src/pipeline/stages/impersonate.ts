// impersonate: drop every caller credential and decide what the cluster sees: Gatehouse's own
// credential plus Impersonate-* for the caller (impersonate mode), or a minted ServiceAccount
// token (serviceAccountToken mode). The deciding policy's `forwarding` overrides the cluster's
// mode, so least privilege is stated once, next to the rules. Audit-ID joins Gatehouse's record
// and the cluster's.
import { isProvenanceKey, PROVENANCE_PREFIX } from '../../authn/index.ts'
import { GatewayError } from '../../errors/index.ts'
import { forwardableHeaders } from '../../upstream/headers.ts'
import { impersonationHeaders, reservedNameProblem } from '../../upstream/impersonation.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

function credentialError(ctx: RequestContext, e: unknown): GatewayError {
  return e instanceof GatewayError
    ? e
    : new GatewayError(
        'GW_UPSTREAM_CREDENTIAL',
        `Gatehouse has no usable credential for cluster '${ctx.cluster!.name}'`,
        { detail: String(e), cause: e },
      )
}

export function createImpersonateStage(): Stage {
  return {
    name: 'impersonate',
    async run(ctx: RequestContext) {
      const cluster = ctx.cluster!
      const identity = ctx.identity!
      const headers = forwardableHeaders(ctx.req.rawHeaders, ctx.upgrade !== undefined)
      const mapping = ctx.decision?.obligations.forwarding
      const sa =
        mapping?.serviceAccount ??
        (!mapping && cluster.config.forwarding.mode === 'serviceAccountToken'
          ? cluster.config.forwarding.serviceAccount
          : undefined)
      let authorization: string | undefined
      try {
        authorization = sa
          ? await cluster.serviceAccountAuthorization(sa)
          : cluster.ownAuthorization()
      } catch (e) {
        throw credentialError(ctx, e)
      }
      if (authorization) headers.push('Authorization', authorization)
      headers.push('Audit-ID', ctx.id)
      if (sa) {
        ctx.principal = {
          user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
          groups: [],
          via: 'serviceAccountToken',
        }
      } else if (cluster.config.forwarding.mode === 'serviceAccountToken' && !mapping) {
        throw credentialError(
          ctx,
          new Error(`cluster '${cluster.name}' has no forwarding.serviceAccount`),
        )
      } else {
        const principal = {
          user: mapping?.impersonate?.user ?? identity.name,
          groups: mapping?.impersonate?.groups ?? identity.groups,
          extra: {
            // Only keys Gatehouse's RBAC grants (deploy/rbac/impersonate.yaml): any other key
            // would make the API server refuse the request.
            ...Object.fromEntries(
              Object.entries(identity.extra).filter(
                ([k]) =>
                  k.startsWith(PROVENANCE_PREFIX) &&
                  isProvenanceKey(k.slice(PROVENANCE_PREFIX.length)),
              ),
            ),
            'gatehouse.dev/request-id': [ctx.id],
            'gatehouse.dev/auth-method': [identity.method],
          },
        }
        const problem = reservedNameProblem(principal)
        if (problem) {
          throw new GatewayError(
            'GW_AUTHZ_IMPERSONATION_REFUSED',
            `Gatehouse will not act as this identity: ${problem}`,
          )
        }
        headers.push(...impersonationHeaders(principal))
        ctx.principal = { user: principal.user, groups: principal.groups, via: 'impersonation' }
      }
      ctx.upstreamHeaders = headers
    },
  }
}
