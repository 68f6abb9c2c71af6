// admit: refuse new requests while Gatehouse could not keep their audit records (the audit
// buffer is full because the store is down, or the journal cannot write): fail closed, before
// any other work (AU-5); and refuse with 429 a credential-less request from a source whose
// refusals flood the audit trail.
import type { Stage } from '../stage.ts'
import { extractCredentials } from './authenticate.ts'

/** Throws the GatewayError that refuses the request, if any. */
export type Admit = (request: { sourceAddress: string; hasCredentials: boolean }) => void

export function createAdmitStage(admit: Admit): Stage {
  return {
    name: 'admit',
    run(ctx) {
      const creds = extractCredentials(ctx)
      admit({
        sourceAddress: ctx.sourceAddress,
        hasCredentials: creds.bearerToken !== undefined || creds.peerCertificate !== undefined,
      })
    },
  }
}
