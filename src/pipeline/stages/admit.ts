// admit: may Gatehouse take this request at all? Not while it is draining (503: retry against
// another replica), not while it could not keep the request's audit record (the audit buffer is
// full because the store is down, or the journal cannot write: fail closed, before any other
// work, AU-5), and not a credential-less request from a source whose refusals flood the audit
// trail (429). Each refusal is a Status with an audit record like any other.
import { GatewayError } from '../../errors/index.ts'
import type { Stage } from '../stage.ts'
import { extractCredentials } from './authenticate.ts'

export interface Admission {
  /** Gatehouse is shutting down: new requests go to another replica. */
  draining(): boolean
  /** Throws the GatewayError that refuses the request, if the audit side must refuse it. */
  admit(request: { sourceAddress: string; hasCredentials: boolean }): void
}

export function createAdmitStage(admission: Admission): Stage {
  return {
    name: 'admit',
    run(ctx) {
      if (admission.draining())
        throw new GatewayError(
          'GW_SHUTTING_DOWN',
          'Gatehouse is shutting down; retry against another replica',
        )
      const creds = extractCredentials(ctx)
      admission.admit({
        sourceAddress: ctx.sourceAddress,
        hasCredentials: creds.bearerToken !== undefined || creds.peerCertificate !== undefined,
      })
    },
  }
}
