// Response filter: pod-log recording. A pod's log read (`kubectl logs`, `-f` included) is a
// recorded session: its record is saved before the request goes upstream (fail closed), every
// byte of a 200 body is recorded as the API server sent it (the recording masks it itself),
// and a recording limit ends the response.
import { isPodLog } from '../../kube/predicates.ts'
import type { SessionManager } from '../../sessions/manager.ts'
import { decidedRequest } from '../facts.ts'
import type { ResponseFilterFactory } from '../response.ts'

export function podLogFilter(sessions: SessionManager | undefined): ResponseFilterFactory {
  return {
    name: 'podLog',
    async create(ctx, control) {
      if (!sessions || !isPodLog(ctx.requestInfo)) return undefined
      const log = await sessions.beginLog(decidedRequest(ctx))
      log.onTerminate(() => control.abort())
      let recording = false
      return {
        // only a 200 body is the pod's log; an error Status is not
        onHead: ({ status }) => {
          recording = status === 200
          return undefined
        },
        onUpstreamData: (chunk) => {
          if (recording) log.chunk(chunk)
        },
        async onEnd(outcome) {
          if (!outcome) return log.end(0, 0, 'the request failed before the API server answered')
          ctx.sessionId = log.record.id
          await log.end(outcome.status, outcome.responseBytes)
        },
      }
    },
  }
}
