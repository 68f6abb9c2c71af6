// Kubernetes service-account tokens are bound to objects (the ServiceAccount, and a pod or a
// secret): the cluster refuses a token once one of them is deleted, though its signature and
// exp are still good. An offline JWKS check cannot see that, so with the kubernetes preset
// every token is also confirmed by the issuing cluster's TokenReview (the API server checks
// the bound objects' existence and uids itself). Answers are cached by token digest for
// revocationCheck.cacheTtlSeconds (default 5 s), the bound on how long a deleted
// ServiceAccount's token keeps working through Gatehouse after the cluster refuses it.
import { createHash } from 'node:crypto'
import type { JWTPayload } from 'jose'
import type { OidcConfig } from './config.ts'
import type { TokenReviewer } from './token-review.ts'
import { rejected, type AuthnResult } from './types.ts'

export interface RevocationCheck {
  readonly cacheMs: number
  /** undefined when the cluster confirms the token, else the rejection. */
  confirm(token: string, payload: JWTPayload): Promise<AuthnResult | undefined>
}

const MAX_ENTRIES = 10_000

export function createRevocationCheck(
  config: OidcConfig,
  opts: { tokenReviewer?: TokenReviewer; defaultCluster?: string; now?: () => number },
): RevocationCheck | undefined {
  if (config.preset !== 'kubernetes') {
    if (config.revocationCheck)
      throw new Error(
        `authentication: revocationCheck for ${config.issuer} applies to the kubernetes preset only`,
      )
    return undefined
  }
  if (config.revocationCheck === false) return undefined
  const cluster = config.revocationCheck?.cluster ?? opts.defaultCluster
  const review = opts.tokenReviewer
  if (!cluster || !review)
    throw new Error(
      `authentication: the kubernetes preset for ${config.issuer} checks tokens with the issuing cluster's TokenReview; name it in revocationCheck.cluster (or set revocationCheck: false to accept tokens of deleted ServiceAccounts until they expire)`,
    )
  const cacheMs = (config.revocationCheck?.cacheTtlSeconds ?? 5) * 1000
  const now = opts.now ?? Date.now
  const cache = new Map<string, { refused: AuthnResult | undefined; until: number }>()

  const ask = async (token: string, sub: unknown): Promise<AuthnResult | undefined> => {
    let r
    try {
      r = await review(cluster, token, config.audiences)
    } catch (e) {
      return rejected(
        'GW_AUTHN_ISSUER_UNAVAILABLE',
        `TokenReview on ${cluster} (revocation check) failed: ${(e as Error).message}`,
      )
    }
    if (!r.authenticated)
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        `cluster ${cluster} no longer accepts this service-account token (deleted or recreated ServiceAccount, pod or secret)${r.error ? `: ${r.error}` : ''}`,
      )
    if (r.user?.username !== sub)
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        `TokenReview on ${cluster} names ${String(r.user?.username)}, not the token's subject`,
      )
    return undefined
  }

  return {
    cacheMs,
    async confirm(token, payload) {
      const key = createHash('sha256').update(token).digest('base64')
      const hit = cache.get(key)
      if (hit && hit.until > now()) return hit.refused
      const refused = await ask(token, payload.sub)
      // An unreachable cluster is not an answer: asked again next time.
      if (refused?.outcome === 'rejected' && refused.code === 'GW_AUTHN_ISSUER_UNAVAILABLE')
        return refused
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!)
      cache.set(key, { refused, until: now() + cacheMs })
      return refused
    },
  }
}
