// Everything one request carries through the pipeline. Each field has one owner stage that
// sets it; later stages only read it.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Identity } from '../authn/index.ts'
import type { RequestObject } from '../kube/body.ts'
import type { AuditRecord } from '../audit/record.ts'
import type { RequestInfo } from '../kube/request-info.ts'
import type { Decision } from '../policy/index.ts'
import type { UpstreamCluster } from '../upstream/cluster.ts'
import type { ApprovalAuditLink, Principal } from '../request/facts.ts'

import { GatewayError } from '../errors/index.ts'

export type { Decision } from '../policy/index.ts'

export interface RequestContext {
  /** Gatehouse request id, also sent upstream as Audit-ID to join both audit trails. */
  readonly id: string
  readonly receivedAt: number
  readonly req: IncomingMessage
  /** Set for ordinary requests. */
  readonly res: ServerResponse | undefined
  /** Set for Upgrade requests (exec, attach, port-forward, WebSocket watches). */
  readonly upgrade: { socket: Duplex; head: Buffer } | undefined
  readonly sourceAddress: string
  /** Stage durations in ms, filled by the runner. */
  readonly timings: Record<string, number>
  /** `Warning` headers for the response (kubectl prints them), e.g. shadow-mode outcomes. */
  readonly warnings: string[]
  /**
   * Aborted as soon as the client goes away before its response is complete (a closed
   * connection, an HTTP/2 RST_STREAM), at any stage: queued or in-flight upstream work stops.
   */
  readonly signal: AbortSignal
  /** Run once when the request has ended, however it ended (release what a stage took). */
  readonly cleanups: (() => void)[]

  /** route */
  cluster?: UpstreamCluster
  /** route: path and query to send upstream, the cluster prefix removed. */
  upstreamPath?: string
  /** requestInfo */
  requestInfo?: RequestInfo
  /** authenticate */
  identity?: Identity
  /** readBody: the whole request body of writes (bounded by limits.maxRequestBodyBytes). */
  requestBody?: Buffer
  /** readBody: that body decoded once (JSON or YAML, strictly), or why it is not decoded. */
  requestObject?: RequestObject
  /** authorize */
  decision?: Decision
  /**
   * authorize: the body to forward instead of requestBody: the write pinned to the
   * resourceVersion its decision read (src/kube/precondition.ts). requestBody stays as sent.
   */
  upstreamBody?: Buffer
  /** hold: the approval this request waited for or used. */
  approval?: ApprovalAuditLink
  /** impersonate: the headers (flat name/value list) to send upstream. */
  upstreamHeaders?: string[]
  /** impersonate: who the cluster will see. */
  principal?: Principal
  /** journal: the record made durable before forwarding (the final record completes it). */
  journaled?: AuditRecord
  /** forward */
  responseStatus?: number
  /** forward */
  requestBytes?: number
  /** forward: bytes the API server sent (before masking). */
  responseBytes?: number
  /** forward: bytes handed to the client, and whether the whole response was. */
  sentBytes?: number
  responseComplete?: boolean
  /** forward: the recorded session this upgrade became (exec, attach, port-forward). */
  sessionId?: string
  /** forward: the head of the response body, when the audit level asks for it. */
  responseBody?: { contentType: string; head: Buffer; bytes: number }
}

/**
 * A field an earlier stage sets, read by a later one: the chain's order guarantees it (chain.ts),
 * and a violation is an internal error (500 Status), never a crash or a guess.
 */
export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new GatewayError('GW_INTERNAL', `a stage ran without ${what}`)
  return value
}
