// What authentication produces, and the contract every authenticator keeps.
import type { PeerCertificate } from 'node:tls'

/** A named, accountable caller. */
export interface Identity {
  /** The name the cluster sees (impersonated user), e.g. github:octo-org/app. */
  name: string
  groups: string[]
  method: 'oidc' | 'tokenReview' | 'mtls' | 'static'
  issuer?: string
  subject?: string
  /** The verified token claims (empty for non-token methods); policy reads them. */
  claims: Record<string, unknown>
  /** Provenance sent upstream as Impersonate-Extra-* (keys from PROVENANCE_KEYS only). */
  extra: Record<string, string[]>
}

export interface Credentials {
  bearerToken?: string
  peerCertificate?: PeerCertificate
}

export type RejectionCode =
  'GW_AUTHN_INVALID_TOKEN' | 'GW_AUTHN_MISSING_CREDENTIALS' | 'GW_AUTHN_ISSUER_UNAVAILABLE'

export type AuthnResult =
  | { outcome: 'authenticated'; identity: Identity }
  /** These credentials are not for this authenticator (another issuer, no certificate...). */
  | { outcome: 'not-applicable' }
  /** For the log only: `detail` never reaches the caller and never contains the credential. */
  | { outcome: 'rejected'; code: RejectionCode; detail: string }

export interface Authenticator {
  readonly name: string
  authenticate(creds: Credentials): Promise<AuthnResult>
}

export const rejected = (code: RejectionCode, detail: string): AuthnResult => ({
  outcome: 'rejected',
  code,
  detail,
})
export const NOT_APPLICABLE: AuthnResult = { outcome: 'not-applicable' }
