// journal: the request's audit record is built and made durable (audit journal, on disk)
// before anything reaches the cluster. A record that cannot be built or stored means the
// request is refused here with a Status: never forwarded without its record.
import type { AuditRecord } from '../../audit/record.ts'
import type { RequestFacts } from '../../request/facts.ts'
import { requestFacts } from '../facts.ts'
import type { Stage } from '../stage.ts'

/** Builds and journals the request's record; throws a GatewayError when it cannot. */
export type JournalRecord = (facts: RequestFacts) => Promise<AuditRecord>

export function createJournalStage(journal: JournalRecord): Stage {
  return {
    name: 'journal',
    async run(ctx) {
      ctx.journaled = await journal(requestFacts(ctx))
    },
  }
}
