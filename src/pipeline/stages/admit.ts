// admit: refuse new requests while Gatehouse could not keep their audit records (the audit
// buffer is full because the store is down): fail closed, before any other work (AU-5).
import { GatewayError } from '../../errors/index.ts'
import type { Stage } from '../stage.ts'

export function createAdmitStage(admits: () => boolean): Stage {
  return {
    name: 'admit',
    run() {
      if (!admits())
        throw new GatewayError(
          'GW_AUDIT_UNAVAILABLE',
          'Gatehouse cannot record requests right now (its audit store is unavailable), so it accepts none; retry shortly',
        )
    },
  }
}
