// Response filter: the head of the response body for the audit record, when the decision's
// audit level is requestResponse. Captured from what the client received (masked), bounded by
// audit.maxBodyBytes; a Secret's only when Gatehouse masked it on its way out (the audit build
// masks text again, but cannot decode a Secret's base64).
import { isSecretRequest } from '../../kube/predicates.ts'
import type { ResponseFilterFactory } from '../response.ts'
import type { RequestContext } from '../context.ts'

export function auditHeadFilter(opts: {
  maxBytes: number
  /** Secrets in this response reach the client masked (src/pipeline/filters/mask.ts). */
  secretsMasked: (ctx: RequestContext) => boolean
}): ResponseFilterFactory {
  return {
    name: 'auditHead',
    create(ctx) {
      if (ctx.decision?.obligations.audit !== 'requestResponse' || opts.maxBytes <= 0)
        return undefined
      if (isSecretRequest(ctx.requestInfo) && !opts.secretsMasked(ctx)) return undefined
      const max = opts.maxBytes
      const parts: Buffer[] = []
      let kept = 0
      let contentType = ''
      return {
        onHead: ({ headers }) => {
          contentType = String(headers['content-type'] ?? '')
          return undefined
        },
        onClientData(chunk) {
          if (kept >= max) return
          const part = chunk.subarray(0, max - kept)
          parts.push(part)
          kept += part.length
        },
        onEnd(outcome) {
          if (outcome)
            ctx.responseBody = {
              contentType,
              head: Buffer.concat(parts),
              bytes: outcome.responseBytes,
            }
        },
      }
    },
  }
}
