// The `authentication` section of gatehouse.yaml.
import { z } from 'zod'
import { exactlyOneOf } from '../schema/one-of.ts'
import { PROVENANCE_KEYS, PROVENANCE_PREFIX } from './provenance.ts'

/** Asymmetric algorithms only: `none` and HMAC (which a public key could forge) are never accepted. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const

const claimMapping = z.strictObject({ claim: z.string().min(1), prefix: z.string().default('') })

const oidcSchema = z.strictObject({
  /** A label for logs and for identity names (kubernetes preset). */
  name: z
    .string()
    .regex(/^[a-z0-9][-a-z0-9]*$/, 'expected a short lowercase label')
    .optional(),
  issuer: z.url({ protocol: /^https$/, error: 'expected an https:// issuer URL' }),
  /** Tokens must name one of these audiences: a Gatehouse-specific one, never a cloud provider's. */
  audiences: z
    .array(z.string().min(1))
    .min(1, 'expected at least one audience (for example gatehouse)'),
  preset: z.enum(['github-actions', 'gitlab-ci', 'kubernetes']).optional(),
  /** CA bundle for the issuer's discovery and JWKS endpoints (private issuers, the harness). */
  caFile: z.string().min(1).optional(),
  /** Skip discovery and fetch keys from here. */
  jwksUri: z.url({ protocol: /^https$/, error: 'expected an https:// JWKS URL' }).optional(),
  algorithms: z
    .array(z.string())
    .min(1)
    .refine((algs) => algs.every((a) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(a)), {
      message: `only asymmetric algorithms are allowed: ${ASYMMETRIC_ALGORITHMS.join(', ')} (never none or HS*)`,
    })
    .default([...ASYMMETRIC_ALGORITHMS]),
  clockSkewSeconds: z.number().int().min(0).max(300).default(30),
  /**
   * After a JWKS fetch attempt (failed or not), no other for this long, however many unknown
   * key ids arrive (rate limit).
   */
  jwksRefreshCooldownSeconds: z.number().min(0).max(300).default(5),
  /** Tokens living longer than this (exp - iat; without iat, exp - now) are refused. */
  maxTokenLifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .max(366 * 86400)
    .default(86400),
  /**
   * kubernetes preset only: each token is confirmed by the issuing cluster's TokenReview, so a
   * deleted ServiceAccount, pod or secret ends its tokens within cacheTtlSeconds. Default: the
   * default cluster. false: signature and claims only (tokens outlive their objects).
   */
  revocationCheck: z
    .union([
      z.literal(false),
      z.strictObject({
        cluster: z.string().min(1).optional(),
        cacheTtlSeconds: z.number().int().min(0).max(60).default(5),
      }),
    ])
    .optional(),
  claimMappings: z
    .strictObject({
      username: claimMapping.optional(),
      groups: claimMapping.optional(),
      /** gatehouse.dev/<key> → claim name; keys limited to those Gatehouse's RBAC grants. */
      extra: z
        .record(z.string(), z.string().min(1))
        .superRefine((record, ctx) => {
          for (const key of Object.keys(record)) {
            if (
              !(PROVENANCE_KEYS as readonly string[]).includes(key.replace(PROVENANCE_PREFIX, ''))
            ) {
              ctx.addIssue({
                code: 'custom',
                path: [key],
                message: `extra keys must be one of ${PROVENANCE_KEYS.map((k) => PROVENANCE_PREFIX + k).join(', ')} (see deploy/rbac/impersonate.yaml)`,
              })
            }
          }
        })
        .optional(),
    })
    .optional(),
  /** Claims that must be present with exactly these string values (e.g. ref_protected: "true"). */
  requiredClaims: z.record(z.string(), z.string()).optional(),
})

const tokenReviewSchema = z.strictObject({
  /** The cluster (by name) whose TokenReview API judges opaque tokens, with Gatehouse's credential. */
  cluster: z.string().min(1),
  audiences: z.array(z.string().min(1)).default([]),
  cacheTtlSeconds: z.number().int().min(0).max(300).default(10),
})

const mtlsSchema = z.strictObject({
  /** With a trust domain, identities come from the SPIFFE URI SAN (spiffe://<domain>/...). */
  spiffeTrustDomain: z
    .string()
    .regex(/^[a-z0-9._-]+$/, 'expected a SPIFFE trust domain like example.org')
    .optional(),
  usernamePrefix: z.string().default('mtls:'),
})

const staticTokensSchema = z.strictObject({
  /** CSV lines `token,name,group1|group2`; `#` starts a comment. */
  file: z.string().min(1),
  insecureAllowStaticTokens: z.literal(true, {
    error:
      'static tokens are for local development only; set insecureAllowStaticTokens: true to accept the risk',
  }),
})

export const authenticatorSchema = exactlyOneOf({
  oidc: oidcSchema,
  tokenReview: tokenReviewSchema,
  mtls: mtlsSchema,
  staticTokens: staticTokensSchema,
})

export const authnConfigSchema = z.strictObject({
  /** Tried in this order; the first that accepts or rejects the credentials decides. */
  authenticators: z.array(authenticatorSchema).min(1, 'expected at least one authenticator'),
})

export type AuthnConfig = z.infer<typeof authnConfigSchema>
export type OidcConfig = z.infer<typeof oidcSchema>
export type TokenReviewConfig = z.infer<typeof tokenReviewSchema>
export type MtlsConfig = z.infer<typeof mtlsSchema>
export type StaticTokensConfig = z.infer<typeof staticTokensSchema>
