// One approval record per held request: what is asked (bound to the exact request, and shown
// whole: highlights first), who asked (with CI provenance), under which rule, the decisions
// taken, and how often the approved request was used. Kept as JSON in the audit store (table
// `approvals`), beside a few columns to filter on; `version` is the compare-and-set counter that
// keeps replicas from losing each other's updates. The SQL lives in repository.ts.
import { z } from 'zod'
import type { AuditRecord } from '../audit/record.ts'
import type { ApprovalObligation, PolicySubject } from '../policy/schema.ts'
import type { BoundRequest } from './binding.ts'
import type { Highlight } from './highlights.ts'
import type { ShownBody } from './shown.ts'

export type ApprovalState =
  /** waiting for approvers */
  | 'pending'
  /** approved: the bound request may pass (until the reuse window ends or the uses run out) */
  | 'approved'
  /** denied by an approver */
  | 'denied'
  /** nobody decided before `expiresAt` */
  | 'expired'
  /** approved, and every permitted use is spent (or the reuse window ended) */
  | 'used'

export interface ApprovalDecision {
  by: string
  groups: string[]
  decision: 'approve' | 'deny'
  comment: string
  /** ISO 8601 UTC */
  at: string
  /** Approved alone as a member of the break-glass group. */
  breakGlass?: boolean
  /** How the approver logged in: admin API bearer token, web OIDC login, development login. */
  via: 'api' | 'web-oidc' | 'web-dev-login'
}

export interface ApprovalRecord {
  id: string
  state: ApprovalState
  /** Hex SHA-256 of `bound` (binding.ts): equal only for the very same request. */
  binding: string
  /** The request that asked first (its audit record has the same id). */
  requestId: string
  /** ISO 8601 UTC */
  createdAt: string
  expiresAt: string
  cluster: string
  requester: NonNullable<AuditRecord['identity']> & {
    /** CI provenance as sent upstream (Impersonate-Extra-gatehouse.dev/*). */
    extra: Record<string, string[]>
  }
  request: {
    method: string
    /** The request target as sent upstream, secrets in the query masked. */
    target: string
    /** The decoded, normalised path. */
    path?: string
    verb: string
    /** The verb policies match (`create` for exec, attach, port-forward and proxy). */
    authzVerb?: string
    apiGroup: string
    apiVersion: string
    resource: string
    subresource: string
    namespace: string
    name: string
    /** A create's object name, from its body or the dry run. */
    objectName?: string
    /** The request is a dry run (`dryRun` in the query, or in a delete's DeleteOptions). */
    dryRun?: boolean
    /** SHA-256 (hex) of the request body of a write; empty for reads. */
    bodySha256: string
    /** `create clusterrolebindings.rbac.authorization.k8s.io cluster-wide named "x"` */
    summary: string
  }
  /** The fields that matter for this request and kind (roleRef, subjects, images, argv...). */
  highlights?: Highlight[]
  /** Exactly what the binding covers (query values masked like the body). */
  bound?: BoundRequest
  /** The request body, decoded and masked, whole. */
  body?: ShownBody
  /** The API server's answer to the same request with dryRun=All, as the requester. */
  dryRun?: { code: number; text: string } | { error: string }
  justification?: string
  rule: { policy: string; rule: string }
  settings: {
    approvers: PolicySubject[]
    quorum: number
    wait: ApprovalObligation['wait']
    reuseWindowSeconds: number
    reuseUses: number
  }
  decisions: ApprovalDecision[]
  /** Set once approved: the bound request may pass until then. */
  usableUntil?: string
  uses: { requestId: string; at: string }[]
  /** The denial's comment, or why it expired. */
  reason?: string
  /** Set when a break-glass approver approved alone. */
  breakGlass?: boolean
  version: number
}

export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'expired', 'used'] as const

/** The most approvals one query returns (a page; `offset` reaches the rest). */
export const MAX_APPROVALS_PER_QUERY = 10_000

export const approvalQuerySchema = z.strictObject({
  identity: z.string().min(1).optional(),
  cluster: z.string().min(1).optional(),
  namespace: z.string().optional(),
  state: z.enum(APPROVAL_STATES).optional(),
  /** Every state but pending (history). */
  decided: z.boolean().optional(),
  binding: z.string().min(1).optional(),
  sinceMs: z.number().int().optional(),
  untilMs: z.number().int().optional(),
  /** Only approvals whose expiry is after this time (epoch ms). */
  expiresAfterMs: z.number().int().optional(),
  /** Only approvals whose expiry is at or before this time (epoch ms). */
  expiresByMs: z.number().int().optional(),
  /**
   * Only what one person may see: approvals whose approver set is one of `approverSets`
   * (keys from the approver-set table), or that `requester` asked for.
   */
  visibleTo: z
    .strictObject({ approverSets: z.array(z.string()), requester: z.string().optional() })
    .optional(),
  limit: z.number().int().min(1).max(MAX_APPROVALS_PER_QUERY).default(100),
  offset: z.number().int().min(0).default(0),
})

export type ApprovalQuery = z.input<typeof approvalQuerySchema>
