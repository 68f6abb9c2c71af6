// Opaque tokens judged by a cluster's TokenReview API, with Gatehouse's own credential.
// Results are cached briefly by token hash (positive and negative), so a burst of requests
// costs one review. Reserved `system:` groups from the review are dropped (except the
// service-account ones), and upstream extras are not forwarded: Gatehouse impersonates only
// with the provenance keys its RBAC grants.
import { createHash } from 'node:crypto'
import type { TokenReviewConfig } from './config.ts'
import { unverifiedIssuer } from './unverified.ts'
import { provenance } from './provenance.ts'
import {
  NOT_APPLICABLE,
  rejected,
  type Authenticator,
  type AuthnResult,
  type Credentials,
} from './types.ts'

export interface TokenReviewResult {
  authenticated: boolean
  user?: { username: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }
  error?: string
}

export type TokenReviewer = (
  clusterName: string,
  token: string,
  audiences: string[],
) => Promise<TokenReviewResult>

const KEPT_SYSTEM_GROUP = /^system:serviceaccounts(:[a-z0-9-]+)?$/

export function createTokenReviewAuthenticator(
  config: TokenReviewConfig,
  review: TokenReviewer,
  opts: { oidcIssuers: readonly string[]; now?: () => number },
): Authenticator {
  const cache = new Map<string, { result: AuthnResult; until: number }>()
  const now = opts.now ?? Date.now
  return {
    name: `tokenReview(${config.cluster})`,
    async authenticate(creds: Credentials): Promise<AuthnResult> {
      const token = creds.bearerToken
      if (!token) return NOT_APPLICABLE
      // Tokens of a configured OIDC issuer were already judged by that authenticator.
      const iss = unverifiedIssuer(token)
      if (iss !== undefined && opts.oidcIssuers.includes(iss)) return NOT_APPLICABLE
      const key = createHash('sha256').update(token).digest('hex')
      const hit = cache.get(key)
      if (hit && hit.until > now()) return hit.result
      let result: AuthnResult
      try {
        const r = await review(config.cluster, token, config.audiences)
        if (!r.authenticated || !r.user?.username) {
          result = rejected(
            'GW_AUTHN_INVALID_TOKEN',
            `TokenReview on ${config.cluster} did not authenticate the token${r.error ? `: ${r.error}` : ''}`,
          )
        } else {
          const groups = (r.user.groups ?? []).filter(
            (g) => !g.startsWith('system:') || KEPT_SYSTEM_GROUP.test(g),
          )
          result = {
            outcome: 'authenticated',
            identity: {
              name: r.user.username,
              groups,
              method: 'tokenReview',
              issuer: `tokenreview:${config.cluster}`,
              subject: r.user.uid ?? r.user.username,
              claims: {},
              extra: {
                [provenance('issuer')]: [`tokenreview:${config.cluster}`],
                [provenance('subject')]: [r.user.username],
              },
            },
          }
        }
      } catch (err) {
        // Not cached: the next request tries again.
        return rejected(
          'GW_AUTHN_ISSUER_UNAVAILABLE',
          `TokenReview on ${config.cluster} failed: ${(err as Error).message}`,
        )
      }
      if (config.cacheTtlSeconds > 0) {
        if (cache.size > 10_000) cache.clear()
        cache.set(key, { result, until: now() + config.cacheTtlSeconds * 1000 })
      }
      return result
    },
  }
}
