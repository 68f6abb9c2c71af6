// The request pipeline, in execution order. Order matters:
//  - admit first: while audit records cannot be kept, nothing else is done (fail closed), and a
//    credential-less request from a source flooding refusals is turned away before it costs
//    anything;
//  - route before requestInfo: attributes are computed on the path the cluster will see;
//  - requestInfo before authenticate: unclassifiable requests are refused without touching
//    credentials, and every later stage (and the audit record) can rely on the attributes;
//  - upgrade after authenticate (its refusal names the caller) and before everything else: a
//    request asking to switch protocols where Kubernetes has no upgrade is refused, so that no
//    later stage treats the connection as a session (issue 18);
//  - limit after upgrade: bounds are per identity, and a caller over its bound is
//    refused before any body is read or anything is sent upstream;
//  - readBody after authenticate (no body is read for unknown callers) and before authorize
//    (conditions may read the object);
//  - authorize before impersonate: nothing about the upstream credential is computed for a
//    request that will be refused;
//  - hold after authorize (only `approve` decisions wait) and before impersonate: nothing is
//    sent upstream for a request people have not approved;
//  - journal after impersonate and right before forward: the record made durable names
//    everything decided (identity, decision, principal), and nothing can refuse the request
//    between its record being on disk and its forwarding;
//  - forward last: the only stage that talks to the cluster.
import type { Authenticator } from '../authn/index.ts'
import type { UpstreamCluster } from '../upstream/cluster.ts'
import type { PolicySet } from '../policy/index.ts'
import type { Stage } from './stage.ts'
import { createAdmitStage, type Admit } from './stages/admit.ts'
import { createAuthenticateStage } from './stages/authenticate.ts'
import { createAuthorizeStage } from './stages/authorize.ts'
import { createForwardStage, type ForwardHooks } from './stages/forward.ts'
import { createHoldStage } from './stages/hold.ts'
import { createLimitStage } from './stages/limit.ts'
import type { ConcurrencyGate } from './concurrency.ts'
import type { ApprovalService } from '../approval/service.ts'
import { createImpersonateStage } from './stages/impersonate.ts'
import { createJournalStage, type JournalRecord } from './stages/journal.ts'
import { createReadBodyStage } from './stages/read-body.ts'
import { createRequestInfoStage } from './stages/request-info.ts'
import { createRouteStage } from './stages/route.ts'
import { createUpgradeStage } from './stages/upgrade.ts'

export function buildChain(deps: {
  clusters: ReadonlyMap<string, UpstreamCluster>
  authenticator: Authenticator
  policies: () => PolicySet
  /** Throws while audit records cannot be kept, or when the source floods refusals. */
  admit: Admit
  /** Makes the request's record durable before forwarding (throws when it cannot). */
  journal: JournalRecord
  maxBodyBytes: number
  /** A request body that sends nothing for this long is refused (408). */
  bodyIdleMs: number
  sendTimeoutMs: number
  auditBodyBytes: number
  concurrency: ConcurrencyGate
  hooks: ForwardHooks
  /** Holds requests for approval (rules with action approve). */
  approvals?: ApprovalService | undefined
}): readonly Stage[] {
  return Object.freeze([
    createAdmitStage(deps.admit),
    createRouteStage(deps.clusters),
    createRequestInfoStage(),
    createAuthenticateStage(deps.authenticator),
    createUpgradeStage(),
    createLimitStage(deps.concurrency),
    createReadBodyStage({ maxBodyBytes: deps.maxBodyBytes, idleMs: deps.bodyIdleMs }),
    createAuthorizeStage(deps.policies),
    createHoldStage(deps.approvals),
    createImpersonateStage(),
    createJournalStage(deps.journal),
    createForwardStage({
      maxBodyBytes: deps.maxBodyBytes,
      sendTimeoutMs: deps.sendTimeoutMs,
      auditBodyBytes: deps.auditBodyBytes,
      hooks: deps.hooks,
    }),
  ])
}
