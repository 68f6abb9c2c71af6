// Client certificates, already verified by the TLS listener against listen.clientCAFile: the
// SPIFFE ID (URI SAN) or the subject CN names the caller, subject O values are its groups.
import type { PeerCertificate } from 'node:tls'
import type { MtlsConfig } from './config.ts'
import { provenance } from './provenance.ts'
import {
  NOT_APPLICABLE,
  rejected,
  type Authenticator,
  type AuthnResult,
  type Credentials,
} from './types.ts'

function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4))
}

const asList = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v]

export function createMtlsAuthenticator(config: MtlsConfig): Authenticator {
  return {
    name: 'mtls',
    authenticate(creds: Credentials): Promise<AuthnResult> {
      const cert = creds.peerCertificate
      if (!cert) return Promise.resolve(NOT_APPLICABLE)
      const groups = asList(cert.subject?.O).map((o) => `${config.usernamePrefix}${o}`)
      const base = { method: 'mtls' as const, claims: {}, groups }
      if (config.spiffeTrustDomain) {
        const spiffe = uriSans(cert).filter((u) => u.startsWith('spiffe://'))
        if (spiffe.length !== 1)
          return Promise.resolve(
            rejected(
              'GW_AUTHN_INVALID_TOKEN',
              `client certificate has ${spiffe.length} SPIFFE IDs, expected exactly one`,
            ),
          )
        const id = spiffe[0]!
        const m = /^spiffe:\/\/([^/]+)(\/[^?#]*)$/.exec(id)
        if (!m || m[1] !== config.spiffeTrustDomain)
          return Promise.resolve(
            rejected(
              'GW_AUTHN_INVALID_TOKEN',
              `SPIFFE ID ${id} is not in trust domain ${config.spiffeTrustDomain}`,
            ),
          )
        return Promise.resolve({
          outcome: 'authenticated',
          identity: {
            ...base,
            name: `${config.usernamePrefix}${id}`,
            issuer: `spiffe://${m[1]}`,
            subject: id,
            extra: { [provenance('issuer')]: [`spiffe://${m[1]}`], [provenance('subject')]: [id] },
          },
        })
      }
      const cn = asList(cert.subject?.CN)
      if (cn.length !== 1 || !cn[0])
        return Promise.resolve(
          rejected('GW_AUTHN_INVALID_TOKEN', 'client certificate has no single subject CN'),
        )
      const issuer = asList(cert.issuer?.CN)[0] ?? 'client-ca'
      return Promise.resolve({
        outcome: 'authenticated',
        identity: {
          ...base,
          name: `${config.usernamePrefix}${cn[0]}`,
          issuer,
          subject: cn[0],
          extra: { [provenance('issuer')]: [issuer], [provenance('subject')]: [cn[0]] },
        },
      })
    },
  }
}
