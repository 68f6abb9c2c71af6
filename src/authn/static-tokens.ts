// Static tokens for local development only (the configuration must say so explicitly). Tokens
// are compared by SHA-256 digest in constant time; the file is read once at start.
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { StaticTokensConfig } from './config.ts'
import { provenance } from './provenance.ts'
import { NOT_APPLICABLE, type Authenticator, type AuthnResult, type Credentials } from './types.ts'

interface Entry {
  digest: Buffer
  name: string
  groups: string[]
}

export function parseStaticTokens(text: string, file: string): Entry[] {
  const out: Entry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const [token, name, groups] = line.split(',').map((s) => s.trim())
    if (!token || !name) throw new Error(`${file}:${i + 1}: expected token,name[,group1|group2]`)
    if (token.length < 16)
      throw new Error(`${file}:${i + 1}: the token is shorter than 16 characters`)
    out.push({
      digest: createHash('sha256').update(token).digest(),
      name,
      groups: groups ? groups.split('|').filter(Boolean) : [],
    })
  })
  return out
}

export function createStaticTokenAuthenticator(
  config: StaticTokensConfig,
  baseDir: string,
): Authenticator {
  const path = config.file.startsWith('/') ? config.file : `${baseDir}/${config.file}`
  const entries = parseStaticTokens(readFileSync(path, 'utf8'), config.file)
  return {
    name: 'staticTokens',
    authenticate(creds: Credentials): Promise<AuthnResult> {
      if (!creds.bearerToken) return Promise.resolve(NOT_APPLICABLE)
      const digest = createHash('sha256').update(creds.bearerToken).digest()
      let match: Entry | undefined
      // Compare with every entry, so timing does not tell which (or whether one) matched early.
      for (const e of entries) if (timingSafeEqual(e.digest, digest)) match ??= e
      if (!match) return Promise.resolve(NOT_APPLICABLE)
      return Promise.resolve({
        outcome: 'authenticated',
        identity: {
          name: match.name,
          groups: match.groups,
          method: 'static',
          claims: {},
          issuer: 'static',
          extra: { [provenance('issuer')]: ['static'], [provenance('subject')]: [match.name] },
        },
      })
    },
  }
}
