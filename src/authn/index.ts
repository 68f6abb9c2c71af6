// Authentication: credentials in, a named identity (or a reason for the log) out.
import type { Logger } from 'pino'
import { createAuthenticatorChain } from './chain.ts'
import type { AuthnConfig } from './config.ts'
import { createMtlsAuthenticator } from './mtls.ts'
import { createOidcAuthenticator } from './oidc.ts'
import { createStaticTokenAuthenticator } from './static-tokens.ts'
import { createTokenReviewAuthenticator, type TokenReviewer } from './token-review.ts'
import type { Authenticator } from './types.ts'

export { createAuthenticatorChain } from './chain.ts'
export {
  authnConfigSchema,
  ASYMMETRIC_ALGORITHMS,
  type AuthnConfig,
  type OidcConfig,
} from './config.ts'
export { createOidcAuthenticator, unverifiedIssuer } from './oidc.ts'
export { PROVENANCE_KEYS, PROVENANCE_PREFIX, isProvenanceKey } from './provenance.ts'
export { type TokenReviewer, type TokenReviewResult } from './token-review.ts'
export type { Authenticator, AuthnResult, Credentials, Identity } from './types.ts'

export async function createAuthenticatorFromConfig(
  config: AuthnConfig,
  deps: {
    logger: Logger
    baseDir?: string
    tokenReviewer?: TokenReviewer
    /** Whose TokenReview confirms kubernetes-preset tokens when revocationCheck names none. */
    defaultCluster?: string | undefined
  },
): Promise<{ authenticator: Authenticator; warnings: string[] }> {
  const warnings: string[] = []
  const baseDir = deps.baseDir ?? process.cwd()
  const oidcIssuers = config.authenticators.flatMap(({ oidc }) => (oidc ? [oidc.issuer] : []))
  const list: Authenticator[] = config.authenticators.map(
    ({ oidc, tokenReview, mtls, staticTokens }) => {
      if (oidc) {
        if (oidc.preset === 'kubernetes' && oidc.revocationCheck === false)
          warnings.push(
            `authentication: revocationCheck is off for ${oidc.issuer}: tokens of deleted ServiceAccounts are accepted until they expire`,
          )
        return createOidcAuthenticator(oidc, {
          baseDir,
          ...(deps.tokenReviewer ? { tokenReviewer: deps.tokenReviewer } : {}),
          ...(deps.defaultCluster ? { defaultCluster: deps.defaultCluster } : {}),
        })
      }
      if (tokenReview) {
        if (!deps.tokenReviewer)
          throw new Error('tokenReview authentication needs a cluster connection')
        return createTokenReviewAuthenticator(tokenReview, deps.tokenReviewer, { oidcIssuers })
      }
      if (mtls) return createMtlsAuthenticator(mtls)
      if (!staticTokens) throw new Error('an authenticator entry names no method')
      warnings.push('static tokens are enabled: for local development only, never in production')
      return createStaticTokenAuthenticator(staticTokens, baseDir)
    },
  )
  return Promise.resolve({ authenticator: createAuthenticatorChain(list), warnings })
}
