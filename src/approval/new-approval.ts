// A new approval record for a held request: the binding, what approvers are shown (the body
// decoded whole, the dry run, the highlights), the summary built from structured fields, the
// requester with its provenance and justification. Throws the Status the client gets when the
// request cannot be shown whole (no approval is created for what nobody could read).
import { coordinatesOf } from '../kube/request-info.ts'
import { randomUUID } from 'node:crypto'
import { selectClaims } from '../audit/record.ts'
import { describeRequest, proxySubpath } from '../kube/describe.ts'
import type { GoQuery } from '../kube/query.ts'
import { maskRequestTarget, maskText } from '../masking/text.ts'
import { requestObjectOf } from '../kube/body.ts'
import { headerValue, type DecidedRequest } from '../request/facts.ts'
import {
  bindingKey,
  boundRequest,
  queryOf,
  type BindingInput,
  type BoundRequest,
} from './binding.ts'
import { highlightsOf } from './highlights.ts'
import type { ApprovalRecord } from './record.ts'
import { checkDryRunShowable, objectOf, showBody, type DryRunOutcome } from './shown.ts'

const JUSTIFICATION_HEADER = 'x-gatehouse-justification'
const JUSTIFICATION_CLAIMS = ['justification', 'reason']

export function bindingInputOf(facts: DecidedRequest): BindingInput {
  return {
    identity: facts.identity,
    cluster: facts.cluster,
    method: facts.method,
    info: facts.info,
    target: facts.target,
    contentType: String(facts.headers['content-type'] ?? ''),
    body: facts.body,
  }
}

function justificationOf(facts: DecidedRequest): string | undefined {
  const h = headerValue(facts, JUSTIFICATION_HEADER)
  const claims = facts.identity.claims
  const claim = JUSTIFICATION_CLAIMS.map((c) => claims[c]).find((v) => typeof v === 'string')
  const v = typeof h === 'string' ? h : claim
  return v?.trim() ? v.trim().slice(0, 2000) : undefined
}

/** Query values as approvers see them: secrets (in exec arguments, say) masked. */
function maskedQuery(query: GoQuery): Map<string, string[]> {
  return new Map([...query].map(([k, v]) => [k, v.map((x) => maskText(x).text)]))
}

function maskedBound(b: BoundRequest): BoundRequest {
  return {
    ...b,
    query: b.query.map(([k, v]) => [k, v.map((x) => maskText(x).text)]),
    ...(b.rawQuery !== undefined
      ? { rawQuery: maskRequestTarget(`/?${b.rawQuery}`).slice(2) }
      : {}),
  }
}

/** A dry run, said in the query, or for deletes in the DeleteOptions body (kubectl's way). */
function isDryRun(query: GoQuery, verb: string, body: unknown): boolean {
  if (query.has('dryRun')) return true
  const dryRun = (body as { dryRun?: unknown } | null)?.dryRun
  return (
    (verb === 'delete' || verb === 'deletecollection') && Array.isArray(dryRun) && dryRun.length > 0
  )
}

/** A create names its object in the body (or, for protobuf, in what the dry run decoded). */
function objectNameOf(facts: DecidedRequest, object: unknown): string | undefined {
  const info = facts.info
  if (info.authzVerb !== 'create' || info.name || info.subresource) return undefined
  const name = (object as { metadata?: { name?: unknown } } | null)?.metadata?.name
  return typeof name === 'string' ? name.slice(0, 253) : undefined
}

export interface NewApprovalDeps {
  now: number
  /** The API server's dry run of the request (approvers see its answer). */
  dryRun?: (() => Promise<DryRunOutcome | undefined>) | undefined
}

export async function newApproval(
  facts: DecidedRequest,
  deps: NewApprovalDeps,
): Promise<ApprovalRecord> {
  const d = facts.decision
  const s = d.obligations.approval
  if (!s) throw new Error('newApproval of a request whose decision is not approve')
  const { info, identity: who } = facts
  const input = bindingInputOf(facts)
  const bound = boundRequest(input)
  const dry = deps.dryRun
    ? await deps.dryRun().catch((e: unknown): DryRunOutcome => ({ error: String(e) }))
    : undefined
  checkDryRunShowable(dry)
  const object0 = facts.object ?? requestObjectOf(facts.body, input.contentType)
  const shown = showBody(facts.body, input.contentType, object0, dry)
  const object = objectOf(dry, shown.object)
  const query = maskedQuery(queryOf(input.target))
  const objectName = objectNameOf(facts, object)
  const proxyPath = proxySubpath(info)
  const dryRun = isDryRun(query, info.verb, shown.object)
  const justification = justificationOf(facts)
  return {
    id: randomUUID(),
    state: 'pending',
    binding: bindingKey(bound),
    requestId: facts.id,
    createdAt: new Date(deps.now).toISOString(),
    expiresAt: new Date(deps.now + s.expiresIn * 1000).toISOString(),
    cluster: input.cluster,
    requester: {
      name: who.name,
      groups: who.groups,
      method: who.method,
      ...(who.issuer ? { issuer: who.issuer } : {}),
      ...(who.subject ? { subject: who.subject } : {}),
      claims: selectClaims(who.claims),
      extra: who.extra,
    },
    request: {
      method: input.method,
      target: maskRequestTarget(input.target),
      path: info.path,
      verb: info.verb,
      authzVerb: info.authzVerb,
      ...coordinatesOf(info),
      ...(objectName ? { objectName } : {}),
      ...(dryRun ? { dryRun } : {}),
      bodySha256: bound.bodySha256,
      summary: describeRequest(info, {
        query,
        method: input.method,
        dryRun,
        ...(objectName ? { objectName } : {}),
      }),
    },
    highlights: highlightsOf(
      { ...info, method: input.method, ...(proxyPath !== undefined ? { proxyPath } : {}) },
      query,
      object,
    ),
    bound: maskedBound(bound),
    ...(shown.body ? { body: shown.body } : {}),
    ...(dry
      ? { dryRun: 'error' in dry ? { error: dry.error } : { code: dry.code, text: dry.text } }
      : {}),
    ...(justification ? { justification } : {}),
    rule: { policy: d.policy ?? '', rule: d.rule },
    settings: {
      approvers: s.approvers,
      quorum: s.quorum,
      wait: s.wait,
      reuseWindowSeconds: s.reuse?.window ?? 600,
      reuseUses: s.reuse?.uses ?? 1,
    },
    decisions: [],
    uses: [],
    version: 1,
  }
}
