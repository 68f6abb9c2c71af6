// The request pipeline, in execution order. Order matters:
//  - route before requestInfo: attributes are computed on the path the cluster will see;
//  - requestInfo before authenticate: unclassifiable requests are refused without touching
//    credentials, and every later stage (and the audit record) can rely on the attributes;
//  - authorize before impersonate: nothing about the upstream credential is computed for a
//    request that will be refused;
//  - forward last: the only stage that talks to the cluster.
import type { Authenticator } from '../authn/index.ts'
import type { UpstreamCluster } from '../upstream/cluster.ts'
import type { Stage } from './stage.ts'
import { createAuthenticateStage } from './stages/authenticate.ts'
import { createAuthorizeStage } from './stages/authorize.ts'
import { createForwardStage, type ForwardHooks } from './stages/forward.ts'
import { createImpersonateStage } from './stages/impersonate.ts'
import { createRequestInfoStage } from './stages/request-info.ts'
import { createRouteStage } from './stages/route.ts'

export function buildChain(deps: {
  clusters: ReadonlyMap<string, UpstreamCluster>
  authenticator: Authenticator
  maxBodyBytes: number
  hooks: ForwardHooks
}): readonly Stage[] {
  return Object.freeze([
    createRouteStage(deps.clusters),
    createRequestInfoStage(),
    createAuthenticateStage(deps.authenticator),
    createAuthorizeStage(),
    createImpersonateStage(),
    createForwardStage({ maxBodyBytes: deps.maxBodyBytes, hooks: deps.hooks }),
  ])
}
