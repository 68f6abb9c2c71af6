// Authenticators tried in configured order: the first that accepts or rejects decides.
import {
  NOT_APPLICABLE,
  rejected,
  type Authenticator,
  type AuthnResult,
  type Credentials,
} from './types.ts'

export function createAuthenticatorChain(list: readonly Authenticator[]): Authenticator {
  return {
    name: `chain(${list.map((a) => a.name).join(', ')})`,
    async authenticate(creds: Credentials): Promise<AuthnResult> {
      for (const authenticator of list) {
        const result = await authenticator.authenticate(creds)
        if (result.outcome !== 'not-applicable') return result
      }
      if (!creds.bearerToken && !creds.peerCertificate)
        return rejected('GW_AUTHN_MISSING_CREDENTIALS', 'no bearer token and no client certificate')
      return rejected(
        'GW_AUTHN_INVALID_TOKEN',
        'no authenticator accepts these credentials (unknown issuer or token type)',
      )
    },
  }
}

export { NOT_APPLICABLE }
