// requestInfo: the Kubernetes attributes of the request, computed as the API server will.
// Anything we cannot classify with certainty is refused, never forwarded (fail closed).
import { GatewayError } from '../../errors/index.ts'
import { parseRequestInfo } from '../../kube/request-info.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function createRequestInfoStage(): Stage {
  return {
    name: 'requestInfo',
    run(ctx: RequestContext) {
      const result = parseRequestInfo(ctx.req.method ?? 'GET', ctx.upstreamPath ?? '/')
      if (!result.ok) {
        throw new GatewayError(
          'GW_REQUEST_UNCLASSIFIABLE',
          `Gatehouse refused a request it cannot classify: ${result.reason}`,
        )
      }
      ctx.requestInfo = result.info
    },
  }
}
