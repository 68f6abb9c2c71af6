// One approval record per held request: what is asked (bound to the exact request), who asked
// (with CI provenance), under which rule, the decisions taken, and how often the approved request
// was used. Kept as JSON in the audit store (table `approvals`), beside a few columns to filter on;
// `version` is the compare-and-set counter that keeps replicas from losing each other's updates.
import { z } from 'zod'
import { filterClause } from '../audit/query.ts'
import type { AuditRecord } from '../audit/record.ts'
import type { ApprovalObligation, PolicySubject } from '../policy/schema.ts'

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
  /** SHA-256 over identity, cluster, verb, resource, namespace, name and the body hash. */
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
    target: string
    verb: string
    apiGroup: string
    apiVersion: string
    resource: string
    subresource: string
    namespace: string
    name: string
    /** SHA-256 (hex) of the request body of a write; empty for reads. */
    bodySha256: string
    /** `create clusterrolebindings.rbac.authorization.k8s.io "x"` */
    summary: string
  }
  /** The request body with secrets masked (approvers see what will be written). */
  body?: { contentType: string; text: string; truncated: boolean; masked: number }
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

export const approvalQuerySchema = z.strictObject({
  identity: z.string().min(1).optional(),
  cluster: z.string().min(1).optional(),
  namespace: z.string().optional(),
  state: z.enum(APPROVAL_STATES).optional(),
  binding: z.string().min(1).optional(),
  sinceMs: z.number().int().optional(),
  untilMs: z.number().int().optional(),
  limit: z.number().int().min(1).max(10_000).default(100),
})

export type ApprovalQuery = z.input<typeof approvalQuerySchema>

export function approvalWhereClause(
  q: ApprovalQuery,
  placeholder: (i: number) => string,
): { sql: string; params: unknown[] } {
  return filterClause(q, ['cluster', 'namespace', 'state', 'binding'], 'created_ms', placeholder)
}

export const APPROVAL_COLUMNS = [
  'id',
  'created_ms',
  'expires_ms',
  'identity',
  'cluster',
  'namespace',
  'state',
  'binding',
  'version',
  'record',
] as const

export function approvalRow(a: ApprovalRecord): unknown[] {
  return [
    a.id,
    Date.parse(a.createdAt),
    Date.parse(a.expiresAt),
    a.requester.name,
    a.cluster,
    a.request.namespace,
    a.state,
    a.binding,
    a.version,
    JSON.stringify(a),
  ]
}

/** Compare-and-set: the row is replaced only when its version is still `a.version - 1`. */
export function approvalUpdateSql(placeholder: (i: number) => string): string {
  return `UPDATE approvals SET state = ${placeholder(0)}, version = ${placeholder(1)}, record = ${placeholder(2)}
    WHERE id = ${placeholder(3)} AND version = ${placeholder(4)}`
}

export function approvalUpdateParams(a: ApprovalRecord): unknown[] {
  return [a.state, a.version, JSON.stringify(a), a.id, a.version - 1]
}
