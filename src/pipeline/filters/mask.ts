// Response filter: masking. What the caller receives is masked unless its policy turns masking
// off (src/masking/responses.ts), and collections leave out what `collections: filter` deny
// rules protect. Objects are asked for as JSON, uncompressed (Accept rewritten), so Gatehouse
// can read them; pod logs and proxied responses keep the client's Accept.
import { GatewayError } from '../../errors/index.ts'
import { isSecretRequest } from '../../kube/predicates.ts'
import { helmReleaseReader, Masking } from '../../masking/profile.ts'
import {
  bodyMaskerFor,
  jsonAccept,
  maskPlanFor,
  UnmaskableResponse,
} from '../../masking/responses.ts'
import { collectionDropper, filterSources, type PolicySet } from '../../policy/index.ts'
import { withAccept } from '../../upstream/headers.ts'
import type { RequestContext } from '../context.ts'
import type { ResponseFilter, ResponseFilterFactory } from '../response.ts'

/**
 * Whether Secrets in this response reach the client (and so the audit record) masked: false
 * when nothing masks the response, or when helm release Secrets may go out unmasked.
 */
export function secretsMaskedFor(
  ctx: RequestContext,
  masking: Masking | undefined,
  policies: (() => PolicySet) | undefined,
): boolean {
  if (!masking || !ctx.requestInfo) return false
  const maskValues = masking.forDecision(ctx.decision) !== undefined
  const profile =
    masking.forDecision(ctx.decision) ??
    (ctx.decision?.obligations.filter ? masking.forRecords : undefined)
  if (!profile || !maskPlanFor(ctx.requestInfo, ctx.requestInfo.query)) return false
  return !helmReaderOf(ctx, maskValues, policies)
}

function helmReaderOf(
  ctx: RequestContext,
  maskValues: boolean,
  policies: (() => PolicySet) | undefined,
): ReturnType<typeof helmReleaseReader> | undefined {
  return maskValues && policies && ctx.identity && ctx.cluster && isSecretRequest(ctx.requestInfo)
    ? helmReleaseReader(policies(), ctx.identity, ctx.cluster.name)
    : undefined
}

export function maskFilter(
  masking: Masking | undefined,
  policies: (() => PolicySet) | undefined,
): ResponseFilterFactory {
  return {
    name: 'mask',
    create(ctx): ResponseFilter | undefined {
      const info = ctx.requestInfo
      if (!masking || !info) return undefined
      const filters = ctx.decision?.obligations.filter
      const maskValues = masking.forDecision(ctx.decision) !== undefined
      const profile =
        masking.forDecision(ctx.decision) ?? (filters ? masking.forRecords : undefined)
      if (!profile) return undefined
      const plan = maskPlanFor(info, info.query)
      if (!plan) return undefined
      const source = Masking.source(ctx.decision)
      const helm = helmReaderOf(ctx, maskValues, policies)
      let masker: ReturnType<typeof bodyMaskerFor> | undefined
      return {
        requestHeaders: (headers) =>
          withAccept(headers, (accept) => (plan.body === 'json' ? jsonAccept(accept) : accept)),
        onHead({ status, headers }) {
          // no body to mask
          if (ctx.req.method === 'HEAD' || status === 204 || status === 304) return undefined
          try {
            masker = bodyMaskerFor(plan, profile, status, headers, masking.maxObjectBytes, {
              // collections: what deny rules name is left out of lists and watches
              ...(filters ? { drop: collectionDropper(filters, info.resource) } : {}),
              mask: maskValues,
              ...(helm ? { keep: helm.mayRead, notice: helm.isRelease } : {}),
            })
          } catch (e) {
            if (e instanceof UnmaskableResponse)
              throw new GatewayError('GW_RESPONSE_UNMASKABLE', e.message, { cause: e })
            throw e
          }
          return { transform: masker.transform, streaming: plan.streaming }
        },
        warnings(complete) {
          if (!masker) return []
          const n = masker.masked()
          const masked =
            n === 0
              ? undefined
              : complete
                ? `Gatehouse masked ${n} value${n === 1 ? '' : 's'} (${source})`
                : `Gatehouse masked values in this response (${source})`
          // what lists leave out is always said, even when none was found yet (watches)
          const left = filters
            ? `Gatehouse leaves out of this ${plan.shape === 'watch' ? 'watch' : 'list'} the objects ${filterSources(filters)} protect${complete ? ` (${masker.dropped?.() ?? 0} left out)` : ''}`
            : undefined
          const releases = masker.noticed?.() ?? 0
          const helmNote = releases
            ? `Gatehouse masked ${releases} helm release Secret${releases === 1 ? '' : 's'}: helm cannot read a masked release; only an identity whose policy lets it update Secrets in the release's namespace reads them unmasked`
            : undefined
          const text = [left, masked, helmNote].filter(Boolean).join('; ')
          return text ? [text] : []
        },
      }
    },
  }
}
