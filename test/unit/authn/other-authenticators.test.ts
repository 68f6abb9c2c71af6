import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { PeerCertificate } from 'node:tls'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import {
  authnConfigSchema,
  createAuthenticatorChain,
  createAuthenticatorFromConfig,
  type Authenticator,
  type AuthnResult,
} from '../../../src/authn/index.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const logger = pino({ level: 'silent' })

async function fromConfig(
  entries: unknown[],
  deps: Record<string, unknown> = {},
): Promise<{ authenticator: Authenticator; warnings: string[] }> {
  return createAuthenticatorFromConfig(authnConfigSchema.parse({ authenticators: entries }), {
    logger,
    ...deps,
  })
}

const cert = (fields: Partial<PeerCertificate>): PeerCertificate =>
  ({ subject: {}, issuer: { CN: 'test-ca' }, ...fields }) as PeerCertificate

describe('static tokens, mTLS, TokenReview and the chain', () => {
  test('static tokens: accepted by exact match only, with a warning at start', async () => {
    const dir = tempDir('gh-static-')
    const file = join(dir, 'tokens.csv')
    writeFileSync(file, '# dev tokens\nlocal-dev-token-0123456789,dev:alice,devs|ops\n')
    const { authenticator, warnings } = await fromConfig([
      { staticTokens: { file, insecureAllowStaticTokens: true } },
    ])
    assert.match(warnings.join(), /local development only/)
    const ok = await authenticator.authenticate({ bearerToken: 'local-dev-token-0123456789' })
    assert.equal(ok.outcome === 'authenticated' && ok.identity.name, 'dev:alice')
    assert.deepEqual(ok.outcome === 'authenticated' && ok.identity.groups, ['devs', 'ops'])
    const near = await authenticator.authenticate({ bearerToken: 'local-dev-token-012345678' })
    assert.equal(near.outcome, 'rejected')
  })

  test('static tokens: short tokens in the file are a start-up error naming the line', async () => {
    const dir = tempDir('gh-static-')
    const file = join(dir, 'tokens.csv')
    writeFileSync(file, 'short,dev:bob\n')
    await assert.rejects(
      fromConfig([{ staticTokens: { file, insecureAllowStaticTokens: true } }]),
      /tokens\.csv:1: the token is shorter than 16 characters/,
    )
  })

  test('mTLS: SPIFFE IDs in the trust domain, refused outside it', async () => {
    const { authenticator } = await fromConfig([
      { mtls: { spiffeTrustDomain: 'prod.example', usernamePrefix: 'spiffe:' } },
    ])
    const ok = await authenticator.authenticate({
      peerCertificate: cert({
        subjectaltname: 'URI:spiffe://prod.example/ns/ci/sa/deployer',
        subject: { O: 'platform' },
      }),
    })
    assert.equal(
      ok.outcome === 'authenticated' && ok.identity.name,
      'spiffe:spiffe://prod.example/ns/ci/sa/deployer',
    )
    assert.deepEqual(ok.outcome === 'authenticated' && ok.identity.groups, ['spiffe:platform'])
    const other = await authenticator.authenticate({
      peerCertificate: cert({ subjectaltname: 'URI:spiffe://evil.example/ns/ci' }),
    })
    assert.equal(
      other.outcome === 'rejected' && other.detail,
      'SPIFFE ID spiffe://evil.example/ns/ci is not in trust domain prod.example',
    )
    const two = await authenticator.authenticate({
      peerCertificate: cert({
        subjectaltname: 'URI:spiffe://prod.example/a, URI:spiffe://prod.example/b',
      }),
    })
    assert.match(two.outcome === 'rejected' ? two.detail : '', /2 SPIFFE IDs/)
  })

  test('mTLS: subject CN without a trust domain', async () => {
    const { authenticator } = await fromConfig([{ mtls: {} }])
    const ok = await authenticator.authenticate({
      peerCertificate: cert({ subject: { CN: 'backup-job' } }),
    })
    assert.equal(ok.outcome === 'authenticated' && ok.identity.name, 'mtls:backup-job')
  })

  test('TokenReview: results cached by token, system groups dropped, errors not cached', async () => {
    let calls = 0
    let fail = false
    const reviewer = (
      _cluster: string,
      token: string,
    ): Promise<{ authenticated: boolean; user?: { username: string; groups: string[] } }> => {
      calls++
      if (fail) return Promise.reject(new Error('connection refused'))
      return Promise.resolve(
        token === 'good-opaque-token'
          ? {
              authenticated: true,
              user: {
                username: 'legacy-bot',
                groups: ['system:masters', 'system:serviceaccounts', 'bots'],
              },
            }
          : { authenticated: false },
      )
    }
    const { authenticator } = await fromConfig(
      [{ tokenReview: { cluster: 'prod', cacheTtlSeconds: 60 } }],
      { tokenReviewer: reviewer },
    )
    const a = await authenticator.authenticate({ bearerToken: 'good-opaque-token' })
    assert.equal(a.outcome === 'authenticated' && a.identity.name, 'legacy-bot')
    assert.deepEqual(a.outcome === 'authenticated' && a.identity.groups, [
      'system:serviceaccounts',
      'bots',
    ])
    await authenticator.authenticate({ bearerToken: 'good-opaque-token' })
    assert.equal(calls, 1)
    assert.equal(
      (await authenticator.authenticate({ bearerToken: 'bad-opaque-token' })).outcome,
      'rejected',
    )
    fail = true
    const down = await authenticator.authenticate({ bearerToken: 'other-token' })
    assert.equal(down.outcome === 'rejected' && down.code, 'GW_AUTHN_ISSUER_UNAVAILABLE')
    fail = false
    assert.equal(
      (await authenticator.authenticate({ bearerToken: 'other-token' })).outcome,
      'rejected',
    )
    assert.equal(calls, 4)
  })

  test('the chain: first decisive answer wins; nothing applicable is a 401 reason', async () => {
    const fixed = (name: string, r: AuthnResult): Authenticator => ({
      name,
      authenticate: () => Promise.resolve(r),
    })
    const identity = { name: 'x', groups: [], method: 'static' as const, claims: {}, extra: {} }
    const chain = createAuthenticatorChain([
      fixed('a', { outcome: 'not-applicable' }),
      fixed('b', { outcome: 'authenticated', identity }),
      fixed('c', { outcome: 'rejected', code: 'GW_AUTHN_INVALID_TOKEN', detail: 'never reached' }),
    ])
    assert.equal((await chain.authenticate({ bearerToken: 't' })).outcome, 'authenticated')
    const none = createAuthenticatorChain([fixed('a', { outcome: 'not-applicable' })])
    const missing = await none.authenticate({})
    assert.equal(missing.outcome === 'rejected' && missing.code, 'GW_AUTHN_MISSING_CREDENTIALS')
    const unknown = await none.authenticate({ bearerToken: 't' })
    assert.equal(unknown.outcome === 'rejected' && unknown.code, 'GW_AUTHN_INVALID_TOKEN')
  })
})
