// The request pipeline: two chains, one per request class, in execution order. Plain requests
// (everything but an upgrade) end in `forward`, with the response side listed below; upgrades
// (exec, attach, port-forward) end in `tunnel`, whose session tap is their response side. The
// way in is the same for both; the order of the stages:
//  - admit first: while Gatehouse is draining or audit records cannot be kept, nothing else is
//    done (fail closed), and a credential-less request from a source flooding refusals is
//    turned away before it costs anything;
//  - route before requestInfo: attributes are computed on the path the cluster will see;
//  - requestInfo before authenticate: unclassifiable requests are refused without touching
//    credentials, and every later stage (and the audit record) can rely on the attributes;
//  - upgrade (upgrade chain only) after authenticate (its refusal names the caller) and before
//    everything else: a connection asks to switch protocols only where Kubernetes has an upgrade
//    (issue 18), so no later stage treats anything else as a session;
//  - limit after authenticate: bounds are per identity, and a caller over its bound is refused
//    before any body is read or anything is sent upstream;
//  - readBody after authenticate (no body is read for unknown callers) and before authorize
//    (conditions may read the object);
//  - authorize before impersonate: nothing about the upstream credential is computed for a
//    request that will be refused. For writes whose conditions read `object`, authorize sends
//    a dryRun=All copy upstream (src/upstream/dry-run.ts): never the write itself;
//  - hold after authorize (only `approve` decisions wait) and before impersonate: nothing but a
//    dryRun=All copy (what approvers are shown, Audit-ID <id>-dry-run) is sent upstream for a
//    request people have not approved;
//  - journal after impersonate and right before the terminal stage: the record made durable
//    names everything decided (identity, decision, principal), and nothing can refuse the
//    request between its record being on disk and its forwarding;
//  - forward / tunnel last: the only stages that send the request itself to the cluster.
// The response side of plain requests, in order (src/pipeline/response.ts):
//  - warnings first: the stages' own Warnings (shadow outcomes) come first in the head;
//  - mask: the only filter that rewrites the body (and the upstream Accept); what later filters
//    see of the client side is masked;
//  - podLog: records the pod's log as the API server sent it (the recording masks it itself),
//    and its limits can cut the response;
//  - auditHead: the head of what the client received, for requestResponse records.
import type { ApprovalService } from '../approval/service.ts'
import type { Authenticator } from '../authn/index.ts'
import type { Masking } from '../masking/profile.ts'
import type { PolicySet } from '../policy/index.ts'
import type { SessionManager } from '../sessions/manager.ts'
import type { UpstreamCluster } from '../upstream/cluster.ts'
import type { ConcurrencyGate } from './concurrency.ts'
import { auditHeadFilter } from './filters/audit-head.ts'
import { maskFilter, secretsMaskedFor } from './filters/mask.ts'
import { podLogFilter } from './filters/pod-log.ts'
import { stageWarnings } from './filters/warnings.ts'
import type { Chain } from './stage.ts'
import { createAdmitStage, type Admission } from './stages/admit.ts'
import { createAuthenticateStage } from './stages/authenticate.ts'
import { createAuthorizeStage } from './stages/authorize.ts'
import { createForwardStage } from './stages/forward.ts'
import { createHoldStage } from './stages/hold.ts'
import { createImpersonateStage } from './stages/impersonate.ts'
import { createJournalStage, type JournalRecord } from './stages/journal.ts'
import { createLimitStage } from './stages/limit.ts'
import { createReadBodyStage } from './stages/read-body.ts'
import { createRequestInfoStage } from './stages/request-info.ts'
import { createRouteStage } from './stages/route.ts'
import { createTunnelStage, type TunnelDeps } from './stages/tunnel.ts'
import { createUpgradeStage } from './stages/upgrade.ts'

export interface ChainDeps {
  clusters: ReadonlyMap<string, UpstreamCluster>
  authenticator: Authenticator
  policies: () => PolicySet
  /** Refuses while draining, while audit records cannot be kept, or a flooding source. */
  admission: Admission
  /** Makes the request's record durable before forwarding (throws when it cannot). */
  journal: JournalRecord
  maxBodyBytes: number
  /** A request body that sends nothing for this long is refused (408). */
  bodyIdleMs: number
  sendTimeoutMs: number
  auditBodyBytes: number
  concurrency: ConcurrencyGate
  /** Records sessions and pod logs (absent: sessions relayed unrecorded, logs not recorded). */
  sessions?: SessionManager | undefined
  /** Masks what callers receive (absent: nothing masked). */
  masking?: Masking | undefined
  tunnel: Omit<TunnelDeps, 'sessions' | 'masking'>
  /** Holds requests for approval (rules with action approve). */
  approvals?: ApprovalService | undefined
}

export interface Chains {
  readonly plain: Chain
  readonly upgrade: Chain
}

export function buildChains(deps: ChainDeps): Chains {
  const wayIn = (upgrade: boolean) => [
    createAdmitStage(deps.admission),
    createRouteStage(deps.clusters),
    createRequestInfoStage(),
    createAuthenticateStage(deps.authenticator),
    ...(upgrade ? [createUpgradeStage()] : []),
    createLimitStage(deps.concurrency),
    createReadBodyStage({ maxBodyBytes: deps.maxBodyBytes, idleMs: deps.bodyIdleMs }),
    createAuthorizeStage(deps.policies),
    createHoldStage(deps.approvals),
    createImpersonateStage(),
    createJournalStage(deps.journal),
  ]
  return Object.freeze({
    plain: Object.freeze({
      name: 'plain',
      stages: Object.freeze(wayIn(false)),
      filters: Object.freeze([
        stageWarnings,
        maskFilter(deps.masking, deps.policies),
        podLogFilter(deps.sessions),
        auditHeadFilter({
          maxBytes: deps.auditBodyBytes,
          secretsMasked: (ctx) => secretsMaskedFor(ctx, deps.masking, deps.policies),
        }),
      ]),
      terminal: createForwardStage({ sendTimeoutMs: deps.sendTimeoutMs }),
    }),
    upgrade: Object.freeze({
      name: 'upgrade',
      stages: Object.freeze(wayIn(true)),
      filters: Object.freeze([]),
      terminal: createTunnelStage({
        ...deps.tunnel,
        sessions: deps.sessions,
        masking: deps.masking,
      }),
    }),
  })
}
