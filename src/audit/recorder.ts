// The record path of every request, for the gateway: admission (is the trail writable, is the
// source flooding refusals), the record made durable before forwarding (journal stage), and
// the final record when the request ends. A record is always produced: when the full record
// (bodies, claims) cannot be built, a smaller one without them is.
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { RequestFacts, ResponseFacts } from '../request/facts.ts'
import type { ObjectMaskingRules } from '../masking/objects.ts'
import { buildAuditRecord, completeAuditRecord } from './build.ts'
import type { AuditRecord } from './record.ts'
import { boundRefusal, RefusalGovernor, type RefusalOptions } from './refusals.ts'
import type { AuditWriter } from './writer.ts'

export interface RequestRecorderOptions {
  writer: AuditWriter
  maxBodyBytes: number
  masking: () => ObjectMaskingRules
  refusals: RefusalOptions
  logger: Logger
  now?: () => number
}

export interface RequestRecorder {
  /**
   * Throws the refusal for a request, if it must be refused. The per-source 429 applies to
   * requests without credentials only: callers sharing an address with a flood (behind one
   * NAT or proxy) keep working, and a refused identity is counted under its own name.
   */
  admit(request: { sourceAddress: string; hasCredentials: boolean }): void
  /**
   * The journal stage: the record on disk before forwarding (returned: the final record is
   * completed from it), or a GatewayError.
   */
  journal(facts: RequestFacts): Promise<AuditRecord>
  /**
   * The request ended (however): its final record (completed from the journaled one, if it was
   * journaled), or a refusal counted into a summary.
   */
  complete(
    facts: RequestFacts,
    response: ResponseFacts | undefined,
    error: GatewayError | undefined,
    journaled: AuditRecord | undefined,
  ): void
  /** A refusal recorded outside the pipeline (a refused connection): bounded or counted. */
  refusal(record: AuditRecord): void
  /** Ends the refusal window and writes its summaries (shutdown). */
  close(): void
}

/** Verbs whose decision may ask the cluster for the object first (policy pre-flight). */
const PREFLIGHT_VERBS = new Set(['create', 'update', 'patch', 'delete'])

export function createRequestRecorder(opts: RequestRecorderOptions): RequestRecorder {
  const { writer, logger } = opts
  const governor = new RefusalGovernor(opts.refusals, opts.now)
  const writeSummaries = (): void => {
    for (const s of governor.takeSummaries()) writer.write(s)
  }
  const timer = setInterval(writeSummaries, opts.refusals.windowSeconds * 1000)
  timer.unref()

  const build = (
    facts: RequestFacts,
    response: ResponseFacts | undefined,
    error: GatewayError | undefined,
    pre: AuditRecord | undefined,
  ): AuditRecord => {
    const base = { maxBodyBytes: opts.maxBodyBytes, masking: opts.masking() }
    try {
      // A record that cannot be serialised is isolated by the writer (quarantine.ts).
      return pre
        ? completeAuditRecord(pre, facts, response, error, base)
        : buildAuditRecord(facts, response, error, base)
    } catch (e) {
      logger.error(
        { requestId: facts.id, error: String(e) },
        'audit record could not be built in full: recorded without bodies and claims',
      )
      const r = buildAuditRecord(facts, response, error, { ...base, bodies: false })
      if (r.identity) r.identity.claims = {}
      r.requestBody = { omitted: `the record could not be built with its body: ${String(e)}` }
      return r
    }
  }

  return {
    admit({ sourceAddress, hasCredentials }) {
      if (!writer.admits())
        throw new GatewayError(
          'GW_AUDIT_UNAVAILABLE',
          writer.journalHealthy()
            ? 'Gatehouse cannot record requests right now (its audit store is unavailable), so it accepts none; retry shortly'
            : 'Gatehouse cannot record requests right now (its audit journal cannot write), so it accepts none; retry shortly',
        )
      const retryAfterSeconds = hasCredentials ? undefined : governor.retryAfter(sourceAddress)
      if (retryAfterSeconds !== undefined)
        throw new GatewayError(
          'GW_REFUSALS_RATE_LIMITED',
          `too many refused requests from ${sourceAddress}; retry after ${retryAfterSeconds} s`,
          { retryAfterSeconds },
        )
    },
    async journal(facts) {
      let record: AuditRecord
      try {
        record = buildAuditRecord(facts, undefined, undefined, {
          maxBodyBytes: opts.maxBodyBytes,
          masking: opts.masking(),
        })
      } catch (e) {
        throw new GatewayError(
          'GW_AUDIT_RECORD_FAILED',
          'Gatehouse could not build the audit record of this request, so it did not forward it',
          { cause: e, detail: String(e) },
        )
      }
      try {
        await writer.begin(record)
      } catch (e) {
        if (e instanceof RangeError || e instanceof TypeError)
          throw new GatewayError(
            'GW_AUDIT_RECORD_FAILED',
            'Gatehouse could not build the audit record of this request, so it did not forward it',
            { cause: e, detail: String(e) },
          )
        throw new GatewayError(
          'GW_AUDIT_JOURNAL_UNAVAILABLE',
          'Gatehouse cannot make audit records durable right now (its journal cannot write), so it did not forward this request; retry shortly',
          { cause: e, detail: String(e) },
        )
      }
      return record
    },
    complete(facts, response, error, pre) {
      // Refusals for a full audit buffer are counted by the writer, not recorded one by one:
      // recording them would grow the very buffer that is full.
      if (error?.code === 'GW_AUDIT_UNAVAILABLE') return
      const record = build(facts, response, error, pre)
      if (pre || !error) {
        writer.write(record)
        return
      }
      // A refused write whose policy read the stored object may have been sent to the cluster
      // as a dry run first (src/upstream/dry-run.ts, Audit-ID <id>-policy-dry-run): its record
      // is what that joins, so it is kept whole (bounded), never only counted.
      if (facts.decision && PREFLIGHT_VERBS.has(facts.info?.verb ?? '')) {
        writer.write(boundRefusal(record, opts.refusals.maxFieldChars))
        return
      }
      // Refused before forwarding: bounded, and past the thresholds only counted.
      this.refusal(record)
    },
    refusal(record) {
      const kept = governor.admit(record)
      if (kept) writer.write(kept)
      writeSummaries()
    },
    close() {
      clearInterval(timer)
      governor.endWindow()
      writeSummaries()
    },
  }
}
