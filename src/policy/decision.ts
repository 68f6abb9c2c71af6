// The outcome of policy for one request. One type for every outcome so later features extend it
// rather than adding a second engine: `approve` (hold for a human) joins `action`, masking and
// session recording join `obligations`.
import type {
  ApprovalObligation,
  AuditLevel,
  ForwardingMapping,
  MaskObligation,
  SessionObligations,
} from './schema.ts'

/** approve: allowed once people approved this exact request (the hold stage waits for it). */
export type Action = 'allow' | 'deny' | 'approve'

/** What Gatehouse must do for a request it lets through, beyond forwarding it. */
export interface Obligations {
  /** How much of the request (and response) the audit record keeps. */
  audit: AuditLevel
  /** Who the cluster sees; absent: the cluster's configured forwarding mode for the identity. */
  forwarding?: ForwardingMapping
  /** exec, attach, port-forward: limits and recording (absent: Gatehouse's defaults). */
  session?: SessionObligations
  /** Masking of responses, logs and exec output (absent: masked with Gatehouse's defaults). */
  mask?: MaskObligation
  /** action approve: who approves, quorum, expiry, wait mode, reuse. */
  approval?: ApprovalObligation
  /**
   * Objects taken out of a list or watch response: what deny or approve rules with
   * `collections: filter` name, when the request returns them among others.
   */
  filter?: CollectionFilter[]
}

/** One rule's share of a filtered collection: items whose namespace and name it matches. */
export interface CollectionFilter {
  policy: string
  rule: string
  namespace?: (namespace: string) => boolean
  name?: (name: string) => boolean
}

/** Which rule decided: a policy rule, or a built-in (`builtin:*`) such as the default deny. */
export interface DecidingRule {
  action: Action
  /** Absent for built-in rules. */
  policy?: string
  rule: string
}

export interface Decision extends DecidingRule {
  /** The deny rule's message for the caller. */
  message?: string
  obligations: Obligations
  /** What shadow-mode policies would have decided, when that differs from the enforced outcome. */
  shadow?: DecidingRule
  /** `when` conditions that failed to evaluate (policy/rule: error), for the log and audit. */
  conditionErrors?: string[]
  /** Why the deciding deny or approve rule covers a request it does not spell out. */
  coverage?: string
  /** How long evaluation took, in microseconds (for the audit record and the bench). */
  evaluationMicros?: number
}

export const DEFAULT_AUDIT_LEVEL: AuditLevel = 'metadata'

export function ruleRef(d: DecidingRule): string {
  return d.policy ? `policy '${d.policy}', rule '${d.rule}'` : d.rule
}
