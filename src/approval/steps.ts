// Every step of an approval is an audit record of its own (requested, notified, approved, denied,
// expired, used), linked to the request that asked by `approval.requestId`: the audit trail shows
// who asked, who approved what and when, and which request used the approval.
import type { ApprovalAuditLink, AuditRecord } from '../audit/record.ts'
import { selectClaims } from '../audit/record.ts'
import type { Identity } from '../authn/index.ts'
import type { ApprovalRecord } from './record.ts'

// The link's shape is the audit record's (audit/ knows no approvals).
export type { ApprovalAuditLink, ApprovalEvent } from '../audit/record.ts'

function identityOf(who: Identity): NonNullable<AuditRecord['identity']> {
  return {
    name: who.name,
    groups: who.groups,
    method: who.method,
    ...(who.issuer ? { issuer: who.issuer } : {}),
    ...(who.subject ? { subject: who.subject } : {}),
    claims: selectClaims(who.claims),
  }
}

/** An audit record for one step; `actor` is who took it (the requester when absent). */
export function stepRecord(
  a: ApprovalRecord,
  link: Omit<ApprovalAuditLink, 'id' | 'requestId'>,
  opts: { actor?: Identity; now: number; seq: number; requestId?: string },
): AuditRecord {
  const requester: NonNullable<AuditRecord['identity']> = {
    name: a.requester.name,
    groups: a.requester.groups,
    method: a.requester.method,
    ...(a.requester.issuer ? { issuer: a.requester.issuer } : {}),
    ...(a.requester.subject ? { subject: a.requester.subject } : {}),
    claims: a.requester.claims,
  }
  return {
    id: `${a.id}.${link.event}.${opts.seq}`,
    time: new Date(opts.now).toISOString(),
    durationMs: 0,
    cluster: a.cluster,
    identity: opts.actor ? identityOf(opts.actor) : requester,
    source: { address: '' },
    request: {
      method: a.request.method,
      target: a.request.target,
      isResourceRequest: a.request.resource !== '',
      verb: a.request.verb,
      apiGroup: a.request.apiGroup,
      apiVersion: a.request.apiVersion,
      resource: a.request.resource,
      subresource: a.request.subresource,
      namespace: a.request.namespace,
      name: a.request.name,
    },
    decision: {
      action: 'approve',
      policy: a.rule.policy,
      rule: a.rule.rule,
      auditLevel: 'metadata',
    },
    principal: null,
    response: { code: 0, requestBytes: 0, responseBytes: 0 },
    approval: { id: a.id, requestId: opts.requestId ?? a.requestId, ...link },
  }
}
