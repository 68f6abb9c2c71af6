// What the hold stage hands the approval service: the request facts, a signal for its client
// going away, its dry run for approvers, and where to say which approval it waits for.
import type { ApprovalAuditLink, DecidedRequest } from '../request/facts.ts'
import type { DryRunOutcome } from './shown.ts'

export interface HeldRequest {
  readonly request: DecidedRequest
  /**
   * Aborted once the client is gone: its connection closed, its stream reset, or its sending
   * side ended (a held request must not spend an approval on a client that may not be there to
   * see it: the approval stays pending, and the retry finds it).
   */
  readonly gone: AbortSignal
  /** The API server's dry run of the request, for approvers (absent: none is made). */
  readonly dryRun?: (() => Promise<DryRunOutcome | undefined>) | undefined
  /** Told which approval the request waits for or used: its audit record names it. */
  link(approval: ApprovalAuditLink): void
}
