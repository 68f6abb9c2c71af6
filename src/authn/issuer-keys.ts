// An issuer's signing keys: fetched (issuer-fetch.ts bounds), matched with jose's local key
// set, refetched when a token names an unknown kid or the keys are old. Every fetch attempt,
// failed or not, starts the cooldown: while the JWKS endpoint fails, tokens with random kids
// cost no fetch each (jose's remote set starts its cooldown only after a success).
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import { fetchIssuerJson, IssuerUnavailable, type Fetch } from './issuer-fetch.ts'

/** Keys older than this are refetched on the next use (a failure keeps the old ones). */
const KEYS_MAX_AGE_MS = 10 * 60_000

export function createIssuerKeys(
  jwksUri: string,
  doFetch: Fetch,
  opts: { cooldownMs: number; now?: () => number },
): JWTVerifyGetKey {
  const now = opts.now ?? Date.now
  let keys: ReturnType<typeof createLocalJWKSet> | undefined
  let fetchedAt = 0
  let attemptedAt = -Infinity
  let lastError: Error | undefined
  let inflight: Promise<void> | undefined

  const load = (): Promise<void> =>
    (inflight ??= (async () => {
      attemptedAt = now()
      try {
        // The API server's /openid/v1/jwks answers 406 to a bare application/json (RFC 7517 §8.5).
        const doc = (await fetchIssuerJson(doFetch, jwksUri, 'JWKS', {
          accept: 'application/jwk-set+json, application/json',
        })) as JSONWebKeySet
        if (!doc || !Array.isArray(doc.keys))
          throw new IssuerUnavailable(`JWKS ${jwksUri} has no keys array`)
        keys = createLocalJWKSet(doc)
        fetchedAt = now()
        lastError = undefined
      } catch (e) {
        lastError = e as Error
        throw e
      } finally {
        inflight = undefined
      }
    })())

  const cooled = (): boolean => now() - attemptedAt >= opts.cooldownMs

  return async (header, token) => {
    // Requests arriving while a fetch is under way wait for it (they do not start another).
    if (inflight) await inflight.catch(() => undefined)
    if (!keys) {
      if (!cooled())
        throw new IssuerUnavailable(
          `keys unavailable (the last fetch failed moments ago: ${lastError?.message ?? 'unknown error'})`,
        )
      await load()
    } else if (now() - fetchedAt > KEYS_MAX_AGE_MS && cooled()) {
      await load().catch(() => undefined)
    }
    try {
      return await keys!(header, token)
    } catch (e) {
      if (!(e instanceof errors.JWKSNoMatchingKey)) throw e
      if (inflight) await inflight.catch(() => undefined)
      else if (cooled())
        // A rotated key: fetch once, within the cooldown however many unknown kids arrive.
        await load()
      else throw e
      return keys!(header, token)
    }
  }
}
