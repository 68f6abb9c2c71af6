// authorize: Identity × request attributes (× request object) → Decision, by the policy set in
// force. Built-in rules come first: client impersonation is refused (a caller must not choose
// its own identity), and API discovery is answered for every authenticated caller unless a
// policy denies it explicitly (kubectl needs discovery before it can show any clear refusal).
import { GatewayError } from '../../errors/index.ts'
import type { RequestInfo } from '../../kube/request-info.ts'
import { describeRequest } from '../../kube/describe.ts'
import {
  DEFAULT_AUDIT_LEVEL,
  ruleRef,
  type Decision,
  type ExecRequest,
  type PolicySet,
  filterSources,
} from '../../policy/index.ts'
import { isImpersonationHeader } from '../../upstream/headers.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'
import { execRequestFor } from '../../kube/remote-command.ts'
import { selectorFactsOf } from '../../kube/scope.ts'
import { mediaTypeOf } from '../../kube/body.ts'
import { localObjects, policyObjects } from './policy-objects.ts'
import { withResourceVersion } from '../../kube/precondition.ts'
import { decodeRequestObject } from './read-body.ts'

/**
 * API discovery (GET /api, /apis, /apis/<group>[/<version>], /version, /openapi/...) is the same
 * for every caller. kubectl sends its --as headers there too, and prints a refused discovery
 * as "Error from server (Forbidden): unknown"; answering discovery as the authenticated caller
 * (the headers are never forwarded) lets the actual request carry the clear refusal.
 */
function isDiscovery(info: RequestInfo | undefined): boolean {
  if (!info || info.isResourceRequest || info.verb !== 'get') return false
  return /^\/(api(\/v1)?|apis(\/[^/]+(\/[^/]+)?)?|version|openapi\/.*)\/?$/.test(info.path)
}

const builtin = (action: 'allow' | 'deny', rule: string): Decision => ({
  action,
  rule,
  obligations: { audit: DEFAULT_AUDIT_LEVEL },
})

function refusal(ctx: RequestContext, d: Decision, exec: ExecRequest | undefined): GatewayError {
  const info = ctx.requestInfo!
  const who = ctx.identity!.name
  const what =
    describeRequest(info) +
    (exec?.command.length
      ? ` (command: ${JSON.stringify(exec.command.join(' ').slice(0, 200))})`
      : '')
  if (!d.policy) {
    const shadowNote = d.shadow ? `; ${ruleRef(d.shadow)} would allow it but is in shadow mode` : ''
    return new GatewayError(
      'GW_POLICY_DENIED',
      `no Gatehouse policy allows ${who} to ${what} (default deny${shadowNote})`,
    )
  }
  const failed = d.conditionErrors?.find((e) => e.startsWith(`${d.policy}/${d.rule}: `))
  const why = failed
    ? `; its condition could not be evaluated (${failed.slice(`${d.policy}/${d.rule}: `.length)}), so the rule refuses the request`
    : ''
  return new GatewayError(
    'GW_POLICY_DENIED',
    `Gatehouse denied ${who} to ${what}${d.message ? `: ${d.message}` : ''} (${ruleRef(d)}${why}${d.coverage ? `; it covers this request: ${d.coverage}` : ''})`,
  )
}

export function createAuthorizeStage(policies: () => PolicySet): Stage {
  return {
    name: 'authorize',
    async run(ctx: RequestContext) {
      const info = ctx.requestInfo!
      const raw = ctx.req.rawHeaders
      if (!isDiscovery(info)) {
        for (let i = 0; i < raw.length; i += 2) {
          if (isImpersonationHeader(raw[i]!)) {
            ctx.decision = builtin('deny', 'builtin:client-impersonation')
            throw new GatewayError(
              'GW_AUTHZ_IMPERSONATION_REFUSED',
              `impersonation (kubectl --as/--as-group, header ${raw[i]}) is not allowed through Gatehouse: it acts as your authenticated identity`,
            )
          }
        }
      }
      const exec = execRequestFor(info)
      const set = policies()
      const request = {
        cluster: ctx.cluster!.name,
        info,
        identity: ctx.identity!,
        userAgent: ctx.req.headers['user-agent'] ?? '',
        dryRun: info.query.getAll('dryRun').includes('All'),
        selector: selectorFactsOf(info.query),
        ...(info.verb === 'patch'
          ? { patchType: mediaTypeOf(ctx.req.headers['content-type']) }
          : {}),
        ...(exec ? { exec } : {}),
      }
      const local = localObjects(ctx)
      // a rule that applies reads object or oldObject: ask the API server what they are
      const needs = set.objectNeeds({ ...request, object: local.object })
      const objects = needs ? await policyObjects(ctx, needs) : local
      let decision = set.evaluate({
        ...request,
        object: objects.object,
        oldObject: objects.oldObject,
        patch: objects.patch,
      })
      if (decision.rule === 'builtin:default-deny' && isDiscovery(info)) {
        decision = {
          ...builtin('allow', 'builtin:discovery'),
          ...(decision.shadow ? { shadow: decision.shadow } : {}),
        }
      }
      ctx.decision = decision
      if (decision.action !== 'deny' && objects.resourceVersion) {
        const pinned = withResourceVersion(
          decodeRequestObject(ctx),
          info.verb,
          mediaTypeOf(ctx.req.headers['content-type']),
          objects.resourceVersion,
        )
        if (pinned) ctx.upstreamBody = pinned
      }
      if (decision.shadow?.action === 'deny' && decision.action !== 'deny') {
        ctx.warnings.push(
          `Gatehouse: ${ruleRef(decision.shadow)} would deny this request; allowed only because the policy is in shadow mode`,
        )
      }
      if (decision.action === 'deny') throw refusal(ctx, decision, exec)
      // A filtered collection is filtered in the response stream, which an upgraded connection
      // (a WebSocket watch) does not pass through: refused rather than served whole.
      if (ctx.upgrade && decision.obligations.filter?.length) {
        ctx.decision = {
          ...decision,
          action: 'deny',
          policy: decision.obligations.filter[0]!.policy,
          rule: decision.obligations.filter[0]!.rule,
        }
        throw new GatewayError(
          'GW_POLICY_DENIED',
          `Gatehouse denied ${ctx.identity!.name} to ${describeRequest(info)} over an upgraded connection: ${filterSources(decision.obligations.filter)} leave objects out of this collection, which Gatehouse does only for plain (non-WebSocket) lists and watches`,
        )
      }
    },
  }
}
