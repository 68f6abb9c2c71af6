// One audit record per request: who, from where, what, what Gatehouse decided and why, what the
// cluster answered. Built once the request has ended, however it ended (refusals included:
// failed authentication attempts are evidence too).
import type { AuditLevel } from '../policy/index.ts'

/** The steps of an approval, each an audit record of its own (src/approval/steps.ts). */
export type ApprovalEvent = 'requested' | 'notified' | 'approved' | 'denied' | 'expired' | 'used'

/** An approval as an audit record names it: which one, which step, the request that asked. */
export interface ApprovalAuditLink {
  id: string
  event: ApprovalEvent
  /** The request that asked for the approval (its audit record id). */
  requestId: string
  by?: string
  comment?: string
  breakGlass?: boolean
  /** notified: where to (webhook host, slack), or why not. */
  detail?: string
}

export interface AuditBody {
  contentType: string
  encoding: 'utf8' | 'base64'
  data: string
  /** The body was longer than the audit body limit; `bytes` is its full size. */
  truncated: boolean
  bytes: number
  /** Values masked in `data` (secrets, keys, card numbers...). */
  masked?: number
}

export interface AuditRecord {
  /** Gatehouse request id, sent upstream as Audit-ID (joins the cluster's audit log). */
  id: string
  /** Receipt time, ISO 8601 UTC. */
  time: string
  durationMs: number
  cluster: string | null
  identity: {
    name: string
    groups: string[]
    method: string
    issuer?: string
    subject?: string
    /** Selected claims (CI provenance: repository, ref, run id...), never the whole token. */
    claims: Record<string, unknown>
  } | null
  source: {
    address: string
    userAgent?: string
    kubectlCommand?: string
    kubectlSession?: string
  }
  request: {
    method: string
    /** The request target as sent to the cluster (cluster prefix removed). */
    target: string
    isResourceRequest: boolean
    verb: string
    apiGroup: string
    apiVersion: string
    resource: string
    subresource: string
    namespace: string
    name: string
  } | null
  decision: {
    action: string
    policy?: string
    rule: string
    message?: string
    shadow?: { action: string; policy?: string; rule: string }
    conditionErrors?: string[]
    auditLevel: AuditLevel
  } | null
  /** Who the cluster saw: an impersonated user/groups or a minted ServiceAccount. */
  principal: { user: string; groups: string[]; via: 'impersonation' | 'serviceAccountToken' } | null
  response: {
    code: number
    requestBytes: number
    /** Bytes the API server sent. */
    responseBytes: number
    /** Bytes Gatehouse handed to the client (after masking), when a response was relayed. */
    sentBytes?: number
    /** False when the response was cut: the client went away (reset, close) or stalled. */
    complete?: boolean
  }
  /** Why Gatehouse refused or failed the request (error code and the caller's message). */
  error?: { code: string; message: string }
  /**
   * Only on the summary record Gatehouse writes when it accepts requests again after refusing
   * them for a full audit buffer: how many requests were refused, from when until when. Refused
   * requests are not recorded one by one (that would grow the buffer that is full), but the gap
   * itself is evidence.
   */
  refusedWhileUnavailable?: { requests: number; from: string; until: string }
  /**
   * Only on a summary of refusals (src/audit/refusals.ts): the refused requests from `source`
   * (an address, an IPv6 /64, or `*` for sources past the tracking bound) in one window that
   * were counted instead of recorded one by one, by error code and HTTP status, with a few of
   * their targets.
   */
  refusalSummary?: {
    source: string
    refusals: number
    byCode: Record<string, number>
    byStatus: Record<string, number>
    targets: string[]
    from: string
    until: string
  }
  requestBody?: AuditBody | { omitted: string }
  responseBody?: AuditBody | { omitted: string }
  /**
   * Approvals: on a held request's record, the approval it waited for (event requested, used...);
   * on a step record (requested, notified, approved, denied, expired, used), the step itself.
   */
  approval?: ApprovalAuditLink
  /**
   * Only on a record the store refused for its content (src/audit/quarantine.ts): the fields
   * above are escaped to printable ASCII and bounded; `original` is the base64 of the first
   * 64 KiB of the record as built, `originalSha256` the digest of all of it.
   */
  storage?: {
    escaped: true
    reason: string
    originalBytes: number
    originalSha256: string
    original: string
  }
  /**
   * Only on a record recovered from the journal at start: Gatehouse stopped (a crash, kill -9)
   * after this request was forwarded and before it ended, so its outcome is unknown (the
   * cluster may have executed it). `response.code` is 0.
   */
  recovered?: { reason: string; journal: string }
}

/** Claims worth keeping: CI provenance and standard identifiers (GitHub Actions, GitLab CI, Kubernetes). */
export const RECORDED_CLAIMS = [
  'iss',
  'sub',
  'aud',
  'repository',
  'repository_owner',
  'ref',
  'ref_type',
  'sha',
  'run_id',
  'run_attempt',
  'workflow',
  'workflow_ref',
  'job_workflow_ref',
  'actor',
  'event_name',
  'environment',
  'project_path',
  'namespace_path',
  'pipeline_id',
  'job_id',
  'user_login',
  'kubernetes.io',
] as const

export function selectClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of RECORDED_CLAIMS) if (claims[k] !== undefined) out[k] = claims[k]
  return out
}
