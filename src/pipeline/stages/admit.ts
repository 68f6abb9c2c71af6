// admit: refuse new requests while Gatehouse could not keep their audit records (the audit
// buffer is full because the store is down, or the journal cannot write): fail closed, before
// any other work (AU-5); and refuse with 429 a source whose refusals flood the audit trail.
import type { Stage } from '../stage.ts'

/** Throws the GatewayError that refuses a request from `sourceAddress`, if any. */
export type Admit = (sourceAddress: string) => void

export function createAdmitStage(admit: Admit): Stage {
  return {
    name: 'admit',
    run(ctx) {
      admit(ctx.sourceAddress)
    },
  }
}
