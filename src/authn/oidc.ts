// OIDC/JWT from one issuer: discovery and JWKS (bounded fetches, same-origin redirects only;
// keys cached, refetched on an unknown key id with a cooldown that failures start too), an
// allow-list of asymmetric algorithms, strict iss/aud/exp/nbf/iat checks and a maximum token
// lifetime. With the kubernetes preset, each token is also confirmed by the issuing cluster's
// TokenReview (revocation.ts): a deleted ServiceAccount, pod or secret ends its tokens.
// A token is routed here only if its (unverified) `iss` names this issuer; everything that
// decides who the caller is comes from the verified payload.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'
import { Agent, fetch as undiciFetch } from 'undici'
import type { OidcConfig } from './config.ts'
import { fetchIssuerJson, IssuerUnavailable, type Fetch } from './issuer-fetch.ts'
import { createIssuerKeys } from './issuer-keys.ts'
import { mapClaims, MappingError } from './presets.ts'
import { createRevocationCheck, type RevocationCheck } from './revocation.ts'
import type { TokenReviewer } from './token-review.ts'
import {
  NOT_APPLICABLE,
  rejected,
  type Authenticator,
  type AuthnResult,
  type Credentials,
} from './types.ts'

/** Verified tokens are remembered this long at most (and never past their exp). */
const VERIFIED_CACHE_MS = 60_000
const VERIFIED_CACHE_ENTRIES = 10_000

/** How long a failed discovery is remembered before trying again. */
const DISCOVERY_RETRY_MS = 5_000

/** The unverified issuer of a JWT-shaped token, only to pick the authenticator that verifies it. */
import { unverifiedIssuer } from './unverified.ts'
export { unverifiedIssuer }

const normalise = (issuer: string): string => issuer.replace(/\/+$/, '')

export type { Fetch } from './issuer-fetch.ts'

export function makeFetch(caFile: string | undefined, baseDir: string): Fetch {
  if (!caFile) return (url, init) => fetch(url, init)
  const path = caFile.startsWith('/') ? caFile : `${baseDir}/${caFile}`
  const agent = new Agent({ connect: { ca: readFileSync(path) } })
  return (url, init) =>
    undiciFetch(url, { ...init, dispatcher: agent } as Parameters<typeof undiciFetch>[1])
}

export { IssuerUnavailable }

export function createOidcAuthenticator(
  config: OidcConfig,
  opts: {
    baseDir?: string
    now?: () => number
    /** TokenReview for the kubernetes preset's revocation check. */
    tokenReviewer?: TokenReviewer
    /** The cluster whose TokenReview confirms kubernetes-preset tokens when none is named. */
    defaultCluster?: string
  } = {},
): Authenticator {
  const issuer = config.issuer
  const doFetch = makeFetch(config.caFile, opts.baseDir ?? process.cwd())
  let jwks: JWTVerifyGetKey | undefined
  let discovery: Promise<JWTVerifyGetKey> | undefined
  let discoveryFailedAt = 0
  const revocation: RevocationCheck | undefined = createRevocationCheck(config, opts)
  /** How long a verified token is remembered: never longer than a revocation check is. */
  const verifiedCacheMs = revocation ? revocation.cacheMs : VERIFIED_CACHE_MS

  const keySet = (jwksUri: string): JWTVerifyGetKey =>
    createIssuerKeys(jwksUri, doFetch, {
      cooldownMs: config.jwksRefreshCooldownSeconds * 1000,
      ...(opts.now ? { now: opts.now } : {}),
    })

  const discover = async (): Promise<JWTVerifyGetKey> => {
    if (config.jwksUri) return keySet(config.jwksUri)
    const url = `${normalise(issuer)}/.well-known/openid-configuration`
    const doc = (await fetchIssuerJson(doFetch, url, 'discovery')) as {
      issuer?: unknown
      jwks_uri?: unknown
    } | null
    if (!doc || typeof doc !== 'object')
      throw new IssuerUnavailable(`discovery ${url} is not a JSON object`)
    // The document must be the issuer's own (OpenID Connect Discovery 1.0, section 4.3).
    if (doc.issuer !== issuer)
      throw new IssuerUnavailable(
        `discovery document names issuer ${String(doc.issuer)}, not ${issuer}`,
      )
    if (typeof doc.jwks_uri !== 'string' || !doc.jwks_uri.startsWith('https://'))
      throw new IssuerUnavailable('discovery document has no https jwks_uri')
    return keySet(doc.jwks_uri)
  }

  const getKeySet = async (): Promise<JWTVerifyGetKey> => {
    if (jwks) return jwks
    if (!discovery) {
      if (Date.now() - discoveryFailedAt < DISCOVERY_RETRY_MS)
        throw new IssuerUnavailable('issuer discovery failed moments ago')
      discovery = discover().then(
        (set) => (jwks = set),
        (err: unknown) => {
          discoveryFailedAt = Date.now()
          discovery = undefined
          throw err
        },
      )
    }
    return discovery
  }

  const verified = new Map<string, { result: AuthnResult; until: number }>()

  return {
    name: `oidc(${config.name ?? issuer})`,
    async authenticate(creds: Credentials): Promise<AuthnResult> {
      const token = creds.bearerToken
      if (!token) return NOT_APPLICABLE
      const iss = unverifiedIssuer(token)
      if (iss === undefined || iss !== issuer) return NOT_APPLICABLE
      // A CI job sends the same token on every request: remember successful verifications
      // (by digest, never the token) for a minute at most and never past the token's exp.
      const key = createHash('sha256').update(token).digest('base64')
      const now = opts.now?.() ?? Date.now()
      const hit = verified.get(key)
      if (hit && hit.until > now) return hit.result
      if (hit) verified.delete(key)
      const result = await verify(token)
      if (result.outcome === 'authenticated') {
        const exp = Number(result.identity.claims['exp']) * 1000
        if (verified.size >= VERIFIED_CACHE_ENTRIES) verified.delete(verified.keys().next().value!)
        verified.set(key, { result, until: Math.min(now + verifiedCacheMs, exp) })
      }
      return result
    },
  }

  async function verify(token: string): Promise<AuthnResult> {
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch {
      return rejected('GW_AUTHN_INVALID_TOKEN', 'malformed JWT header')
    }
    if (typeof header.alg !== 'string' || !config.algorithms.includes(header.alg)) {
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        `algorithm ${String(header.alg)} is not allowed for ${issuer}`,
      )
    }
    let payload: JWTPayload
    try {
      const set = await getKeySet()
      const verified = await jwtVerify(token, set, {
        issuer,
        audience: config.audiences,
        algorithms: config.algorithms,
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: ['exp'],
        ...(opts.now ? { currentDate: new Date(opts.now()) } : {}),
      })
      payload = verified.payload
    } catch (err) {
      return classify(err, issuer)
    }
    const now = Math.floor((opts.now?.() ?? Date.now()) / 1000)
    if (typeof payload.iat === 'number' && payload.iat > now + config.clockSkewSeconds) {
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        `token from ${issuer} was issued in the future (iat)`,
      )
    }
    // A leaked long-lived token is a standing credential: bound iat..exp (or, without iat,
    // what is left of it).
    const lifetime = payload.exp! - (typeof payload.iat === 'number' ? payload.iat : now)
    if (lifetime > config.maxTokenLifetimeSeconds)
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        `token from ${issuer} lives ${lifetime} s, more than maxTokenLifetimeSeconds (${config.maxTokenLifetimeSeconds})`,
      )
    for (const [claim, value] of Object.entries(config.requiredClaims ?? {})) {
      if (String(payload[claim]) !== value)
        return rejected('GW_AUTHN_INVALID_TOKEN', `claim ${claim} is not ${value}`)
    }
    if (revocation) {
      const refused = await revocation.confirm(token, payload)
      if (refused) return refused
    }
    try {
      const mapped = mapClaims(payload, config)
      return {
        outcome: 'authenticated',
        identity: {
          ...mapped,
          method: 'oidc',
          issuer,
          ...(payload.sub ? { subject: payload.sub } : {}),
          claims: payload,
        },
      }
    } catch (err) {
      if (err instanceof MappingError) return rejected('GW_AUTHN_INVALID_TOKEN', err.message)
      throw err
    }
  }
}

function classify(err: unknown, issuer: string): AuthnResult {
  if (err instanceof IssuerUnavailable) return rejected('GW_AUTHN_ISSUER_UNAVAILABLE', err.message)
  if (err instanceof errors.JWTExpired)
    return rejected('GW_AUTHN_INVALID_TOKEN', `token from ${issuer} expired`)
  if (err instanceof errors.JWTClaimValidationFailed)
    return rejected('GW_AUTHN_INVALID_TOKEN', `claim ${err.claim} invalid: ${err.reason}`)
  if (err instanceof errors.JWKSNoMatchingKey)
    return rejected('GW_AUTHN_INVALID_TOKEN', `no key of ${issuer} matches the token's kid`)
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return rejected('GW_AUTHN_INVALID_TOKEN', 'signature verification failed')
  if (err instanceof errors.JOSEAlgNotAllowed)
    return rejected('GW_AUTHN_INVALID_TOKEN', 'algorithm not allowed')
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return rejected('GW_AUTHN_INVALID_TOKEN', 'several keys match the kid')
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid)
    return rejected('GW_AUTHN_INVALID_TOKEN', `malformed token: ${err.message}`)
  if (err instanceof errors.JOSENotSupported)
    return rejected('GW_AUTHN_INVALID_TOKEN', `unsupported: ${err.message}`)
  // Fetch failures, timeouts, a JWKS that is not JSON: the issuer, not the token, is at fault.
  return rejected(
    'GW_AUTHN_ISSUER_UNAVAILABLE',
    `keys of ${issuer} unavailable: ${(err as Error).message}`,
  )
}
