// The issuer a token claims, read without verifying it: only to choose which authenticator
// verifies it (OIDC by issuer, or TokenReview).
import { decodeJwt } from 'jose'

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export function unverifiedIssuer(token: string): string | undefined {
  if (!JWT_SHAPE.test(token)) return undefined
  try {
    const iss = decodeJwt(token).iss
    return typeof iss === 'string' ? iss : undefined
  } catch {
    return undefined
  }
}
