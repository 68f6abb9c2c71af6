// Request facts: what the domains (audit, approvals, sessions) know of a request, as a small
// read-only value the pipeline hands them (src/pipeline/facts.ts builds it from its context).
// Domains never see the pipeline's context, its sockets or its stages: what they decide on is
// here, computed once (the Kubernetes attributes and the Go-parsed query in `info`, the body
// decoded once in `object`).
import type { IncomingHttpHeaders } from 'node:http'
import type { Identity } from '../authn/index.ts'
import type { RequestObject } from '../kube/body.ts'
import type { RequestInfo } from '../kube/request-info.ts'
import type { Decision } from '../policy/index.ts'

export type ApprovalEvent = 'requested' | 'notified' | 'approved' | 'denied' | 'expired' | 'used'

/** The approval a request asked for or used, as its audit record names it. */
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

/** Who the cluster sees: the impersonated principal, or the TokenRequest token's subject. */
export interface Principal {
  user: string
  groups: string[]
  via: 'impersonation' | 'serviceAccountToken'
}

/** Everything known of a request up to where it is; later phases fill the optional fields. */
export interface RequestFacts {
  /** Gatehouse request id, also sent upstream as Audit-ID. */
  readonly id: string
  readonly receivedAt: number
  readonly sourceAddress: string
  /** The HTTP method as sent. */
  readonly method: string
  /** Path and query as the cluster will see them (the /clusters/<name> prefix removed). */
  readonly target: string
  readonly headers: Readonly<IncomingHttpHeaders>
  readonly cluster?: string | undefined
  readonly info?: RequestInfo | undefined
  readonly identity?: Identity | undefined
  readonly decision?: Decision | undefined
  /** The request body as sent (writes; read whole before authorize). */
  readonly body?: Buffer | undefined
  /** That body decoded once (strictly), or why not. */
  readonly object?: RequestObject | undefined
  /** The body forwarded instead of `body` (a write pinned to the resourceVersion policy read). */
  readonly upstreamBody?: Buffer | undefined
  readonly principal?: Principal | undefined
  readonly approval?: ApprovalAuditLink | undefined
}

/** A request policy has decided on: what approvals and sessions start from. */
export interface DecidedRequest extends RequestFacts {
  readonly cluster: string
  readonly info: RequestInfo
  readonly identity: Identity
  readonly decision: Decision
}

/** How the answer went: what the audit record says of it. */
export interface ResponseFacts {
  readonly status: number
  readonly requestBytes: number
  /** Bytes the API server sent (before masking). */
  readonly responseBytes: number
  /** Bytes handed to the client, and whether the whole response was. */
  readonly sentBytes?: number | undefined
  readonly complete?: boolean | undefined
  /** The head of the response body, when the audit level asks for it. */
  readonly body?: { contentType: string; head: Buffer; bytes: number } | undefined
}

/** A header's single value (a repeated header is not one value). */
export function headerValue(facts: RequestFacts, name: string): string | undefined {
  const v = facts.headers[name]
  return typeof v === 'string' ? v : undefined
}
