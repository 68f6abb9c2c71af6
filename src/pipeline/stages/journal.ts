// journal: the request's audit record is built and made durable (audit journal, on disk)
// before anything reaches the cluster. A record that cannot be built or stored means the
// request is refused here with a Status: never forwarded without its record.
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

/** Builds and journals ctx's record; throws a GatewayError when it cannot. */
export type JournalRecord = (ctx: RequestContext) => Promise<void>

export function createJournalStage(journal: JournalRecord): Stage {
  return { name: 'journal', run: (ctx) => journal(ctx) }
}
