// OIDC/JWT from one issuer: discovery and JWKS (cached, refetched on an unknown key id with a
// cooldown), an allow-list of asymmetric algorithms, and strict iss/aud/exp/nbf/iat checks.
// A token is routed here only if its (unverified) `iss` names this issuer; everything that
// decides who the caller is comes from the verified payload.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
} from 'jose'
import { Agent, fetch as undiciFetch } from 'undici'
import type { OidcConfig } from './config.ts'
import { mapClaims, MappingError } from './presets.ts'
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
const FETCH_TIMEOUT_MS = 5_000

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** The unverified issuer of a JWT-shaped token, only to pick the authenticator that verifies it. */
export function unverifiedIssuer(token: string): string | undefined {
  if (!JWT_SHAPE.test(token)) return undefined
  try {
    const iss = decodeJwt(token).iss
    return typeof iss === 'string' ? iss : undefined
  } catch {
    return undefined
  }
}

const normalise = (issuer: string): string => issuer.replace(/\/+$/, '')

export type Fetch = (
  url: string,
  init?: {
    headers?: Record<string, string> | Headers
    signal?: AbortSignal
    redirect?: 'manual' | 'follow' | 'error'
    method?: string
  },
) => Promise<Response>

export function makeFetch(caFile: string | undefined, baseDir: string): Fetch {
  if (!caFile) return (url, init) => fetch(url, init)
  const path = caFile.startsWith('/') ? caFile : `${baseDir}/${caFile}`
  const agent = new Agent({ connect: { ca: readFileSync(path) } })
  return (url, init) =>
    undiciFetch(url, { ...init, dispatcher: agent } as Parameters<typeof undiciFetch>[1])
}

export class IssuerUnavailable extends Error {}

export function createOidcAuthenticator(
  config: OidcConfig,
  opts: { baseDir?: string; now?: () => number } = {},
): Authenticator {
  const issuer = config.issuer
  const doFetch = makeFetch(config.caFile, opts.baseDir ?? process.cwd())
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined
  let discovery: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined
  let discoveryFailedAt = 0

  const keySet = (jwksUri: string): ReturnType<typeof createRemoteJWKSet> =>
    createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: config.jwksRefreshCooldownSeconds * 1000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: FETCH_TIMEOUT_MS,
      [customFetch]: (url, init) => doFetch(url, init),
    })

  const discover = async (): Promise<ReturnType<typeof createRemoteJWKSet>> => {
    if (config.jwksUri) return keySet(config.jwksUri)
    const url = `${normalise(issuer)}/.well-known/openid-configuration`
    let doc: { issuer?: unknown; jwks_uri?: unknown }
    try {
      const res = await doFetch(url, {
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        headers: { accept: 'application/json' },
      })
      if (res.status !== 200)
        throw new IssuerUnavailable(`discovery ${url} answered HTTP ${res.status}`)
      doc = (await res.json()) as typeof doc
    } catch (err) {
      throw err instanceof IssuerUnavailable
        ? err
        : new IssuerUnavailable(`discovery ${url} failed: ${(err as Error).message}`)
    }
    // The document must be the issuer's own (OpenID Connect Discovery 1.0, section 4.3).
    if (doc.issuer !== issuer)
      throw new IssuerUnavailable(
        `discovery document names issuer ${String(doc.issuer)}, not ${issuer}`,
      )
    if (typeof doc.jwks_uri !== 'string' || !doc.jwks_uri.startsWith('https://'))
      throw new IssuerUnavailable('discovery document has no https jwks_uri')
    return keySet(doc.jwks_uri)
  }

  const getKeySet = async (): Promise<ReturnType<typeof createRemoteJWKSet>> => {
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
        verified.set(key, { result, until: Math.min(now + VERIFIED_CACHE_MS, exp) })
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
    for (const [claim, value] of Object.entries(config.requiredClaims ?? {})) {
      if (String(payload[claim]) !== value)
        return rejected('GW_AUTHN_INVALID_TOKEN', `claim ${claim} is not ${value}`)
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
