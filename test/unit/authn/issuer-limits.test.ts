// Issuer handling (issue 18 items 10 and 11) against real HTTPS servers: discovery follows no
// redirect to another origin or to plain HTTP, documents are size-bounded while they stream,
// a failing JWKS endpoint is not hammered by random kids (the cooldown starts on failures
// too), tokens living longer than maxTokenLifetimeSeconds are refused, and kubernetes-preset
// tokens the cluster no longer accepts (TokenReview) are refused once the cache bound passes.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { after, before, describe, test } from 'node:test'
import {
  authnConfigSchema,
  createOidcAuthenticator,
  type AuthnResult,
  type OidcConfig,
} from '../../../src/authn/index.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { createCa, issueCert, type TestCa } from '../../harness/pki.ts'
import { tempDir } from '../../harness/temp-dir.ts'

type Handler = (req: IncomingMessage, res: ServerResponse, url: string) => void

let issuer: OidcIssuer
let ca: TestCa
let hostile: Server
let hostileUrl: string
let handler: Handler = (_req, res) => res.end()
let requests = 0

before(async () => {
  const dir = tempDir('gh-issuer-limits-')
  issuer = await startOidcIssuer({ dir })
  ca = createCa(dir, 'hostile-ca')
  const leaf = issueCert(ca, 'hostile')
  hostile = createServer(
    { cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) },
    (req, res) => {
      requests++
      handler(req, res, hostileUrl)
    },
  )
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r))
  hostileUrl = `https://127.0.0.1:${(hostile.address() as AddressInfo).port}`
})
after(async () => {
  await issuer.close()
  hostile.closeAllConnections()
  await new Promise((r) => hostile.close(r))
})

function config(extra: Record<string, unknown>): OidcConfig {
  const parsed = authnConfigSchema.parse({
    authenticators: [{ oidc: { audiences: ['gatehouse'], ...extra } }],
  })
  return parsed.authenticators[0]!.oidc!
}

const hostileConfig = (extra: Record<string, unknown> = {}): OidcConfig =>
  config({ issuer: hostileUrl, caFile: ca.certFile, ...extra })

const now = (): number => Math.floor(Date.now() / 1000)

async function tokenFor(iss: string): Promise<string> {
  return issuer.mint({ iss, aud: 'gatehouse', sub: 'x', exp: now() + 300, iat: now() })
}

function assertRejected(r: AuthnResult, code: string, detail: RegExp): void {
  assert.equal(r.outcome, 'rejected', JSON.stringify(r))
  if (r.outcome !== 'rejected') return
  assert.equal(r.code, code)
  assert.match(r.detail, detail)
}

describe('issuer fetches are bounded', () => {
  test('a discovery redirect to another host is refused', async () => {
    handler = (_req, res) => {
      res.writeHead(302, { location: `${issuer.url}/.well-known/openid-configuration` })
      res.end()
    }
    const auth = createOidcAuthenticator(hostileConfig())
    assertRejected(
      await auth.authenticate({ bearerToken: await tokenFor(hostileUrl) }),
      'GW_AUTHN_ISSUER_UNAVAILABLE',
      /redirects to https:\/\/127\.0\.0\.1:\d+\/\.well-known.*followed only within/,
    )
  })

  test('a discovery redirect to plain HTTP on the same host is refused', async () => {
    handler = (_req, res, base) => {
      res.writeHead(301, { location: base.replace('https:', 'http:') + '/x' })
      res.end()
    }
    const auth = createOidcAuthenticator(hostileConfig())
    assertRejected(
      await auth.authenticate({ bearerToken: await tokenFor(hostileUrl) }),
      'GW_AUTHN_ISSUER_UNAVAILABLE',
      /redirects to http:/,
    )
  })

  test('a same-origin redirect is followed', async () => {
    handler = (req, res, base) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(307, { location: '/moved/openid-configuration' })
        res.end()
      } else if (req.url === '/moved/openid-configuration') {
        res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }))
      } else {
        res.end(JSON.stringify({ keys: [] }))
      }
    }
    const auth = createOidcAuthenticator(hostileConfig())
    // discovery works; the (empty) key set then matches nothing
    assertRejected(
      await auth.authenticate({ bearerToken: await tokenFor(hostileUrl) }),
      'GW_AUTHN_INVALID_TOKEN',
      /no key/,
    )
  })

  test('an endless discovery document is cut at the size bound', async () => {
    let sent = 0
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      const pump = (): void => {
        while (sent < 100 * 1024 * 1024 && res.write(chunk)) sent += chunk.length
        if (sent < 100 * 1024 * 1024) res.once('drain', pump)
        else res.end()
      }
      res.on('close', () => res.removeAllListeners('drain'))
      pump()
    }
    const auth = createOidcAuthenticator(hostileConfig())
    assertRejected(
      await auth.authenticate({ bearerToken: await tokenFor(hostileUrl) }),
      'GW_AUTHN_ISSUER_UNAVAILABLE',
      /larger than 262144 bytes/,
    )
    assert.ok(sent < 100 * 1024 * 1024, `the download was abandoned after ${sent} bytes`)
  })

  test('a declared oversized JWKS is refused without reading it', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) })
      res.write('{')
    }
    const auth = createOidcAuthenticator(hostileConfig({ jwksUri: `${hostileUrl}/keys` }))
    assertRejected(
      await auth.authenticate({ bearerToken: await tokenFor(hostileUrl) }),
      'GW_AUTHN_ISSUER_UNAVAILABLE',
      /larger than/,
    )
  })

  test('while the JWKS endpoint fails, random kids cost at most one fetch per cooldown', async () => {
    handler = (_req, res) => {
      res.writeHead(500)
      res.end()
    }
    const auth = createOidcAuthenticator(
      hostileConfig({ jwksUri: `${hostileUrl}/keys`, jwksRefreshCooldownSeconds: 5 }),
    )
    requests = 0
    for (let i = 0; i < 100; i++) {
      const token = await issuer.mint(
        { iss: hostileUrl, aud: 'gatehouse', sub: `s${i}`, exp: now() + 300 },
        { kid: `random-${i}` },
      )
      const r = await auth.authenticate({ bearerToken: token })
      assert.equal(r.outcome, 'rejected')
    }
    assert.equal(requests, 1, 'one JWKS fetch for 100 tokens within the cooldown')
  })
})

describe('concurrent first use', () => {
  test('tokens arriving while the keys are first fetched wait for that fetch', async () => {
    const auth = createOidcAuthenticator(config({ issuer: issuer.url, caFile: issuer.caFile }))
    const before = issuer.jwksRequests
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        auth.authenticate({
          bearerToken: await issuer.mint({
            iss: issuer.url,
            aud: 'gatehouse',
            sub: `c${i}`,
            exp: now() + 300,
          }),
        }),
      ),
    )
    assert.deepEqual(
      results.filter((r) => r.outcome !== 'authenticated'),
      [],
    )
    assert.equal(issuer.jwksRequests, before + 1)
  })
})

describe('token lifetime and revocation', () => {
  const issuerConfig = (extra: Record<string, unknown> = {}): OidcConfig =>
    config({ issuer: issuer.url, caFile: issuer.caFile, ...extra })

  test('a token living longer than maxTokenLifetimeSeconds is refused (default 24 h)', async () => {
    const auth = createOidcAuthenticator(issuerConfig())
    const claims = { iss: issuer.url, aud: 'gatehouse', sub: 'long' }
    assertRejected(
      await auth.authenticate({
        bearerToken: await issuer.mint({ ...claims, iat: now(), exp: now() + 20 * 365 * 86400 }),
      }),
      'GW_AUTHN_INVALID_TOKEN',
      /more than maxTokenLifetimeSeconds \(86400\)/,
    )
    assertRejected(
      await auth.authenticate({
        bearerToken: await issuer.mint({ ...claims, exp: now() + 90000 }),
      }),
      'GW_AUTHN_INVALID_TOKEN',
      /maxTokenLifetimeSeconds/,
    )
    const ok = await auth.authenticate({
      bearerToken: await issuer.mint({ ...claims, iat: now(), exp: now() + 3600 }),
    })
    assert.equal(ok.outcome, 'authenticated')
    const short = createOidcAuthenticator(issuerConfig({ maxTokenLifetimeSeconds: 600 }))
    assertRejected(
      await short.authenticate({
        bearerToken: await issuer.mint({ ...claims, iat: now(), exp: now() + 3600 }),
      }),
      'GW_AUTHN_INVALID_TOKEN',
      /lives 3600 s/,
    )
  })

  test('kubernetes preset: a token the cluster stops accepting is refused within the cache bound', async () => {
    let clock = Date.now()
    let accepted = true
    let reviews = 0
    const auth = createOidcAuthenticator(
      issuerConfig({ preset: 'kubernetes', revocationCheck: { cacheTtlSeconds: 5 } }),
      {
        now: () => clock,
        defaultCluster: 'harness',
        tokenReviewer: (cluster, _token, audiences) => {
          reviews++
          assert.equal(cluster, 'harness')
          assert.deepEqual(audiences, ['gatehouse'])
          return Promise.resolve(
            accepted
              ? { authenticated: true, user: { username: 'system:serviceaccount:ci:job' } }
              : { authenticated: false, error: 'service account ci/job has been deleted' },
          )
        },
      },
    )
    const token = await issuer.mint({
      iss: issuer.url,
      aud: 'gatehouse',
      sub: 'system:serviceaccount:ci:job',
      iat: now(),
      exp: now() + 3600,
    })
    assert.equal((await auth.authenticate({ bearerToken: token })).outcome, 'authenticated')
    assert.equal((await auth.authenticate({ bearerToken: token })).outcome, 'authenticated')
    assert.equal(reviews, 1, 'cached')
    accepted = false // the ServiceAccount is deleted
    clock += 5001
    assertRejected(
      await auth.authenticate({ bearerToken: token }),
      'GW_AUTHN_INVALID_TOKEN',
      /no longer accepts this service-account token.*deleted/,
    )
  })

  test('kubernetes preset: a review naming someone else is refused', async () => {
    const auth = createOidcAuthenticator(issuerConfig({ preset: 'kubernetes' }), {
      defaultCluster: 'harness',
      tokenReviewer: () =>
        Promise.resolve({ authenticated: true, user: { username: 'system:serviceaccount:a:b' } }),
    })
    const token = await issuer.mint({
      iss: issuer.url,
      aud: 'gatehouse',
      sub: 'system:serviceaccount:ci:job',
      exp: now() + 600,
    })
    assertRejected(
      await auth.authenticate({ bearerToken: token }),
      'GW_AUTHN_INVALID_TOKEN',
      /names system:serviceaccount:a:b/,
    )
  })

  test('kubernetes preset without a cluster to ask is a configuration error', () => {
    assert.throws(
      () => createOidcAuthenticator(issuerConfig({ preset: 'kubernetes' })),
      /revocationCheck\.cluster/,
    )
    assert.doesNotThrow(() =>
      createOidcAuthenticator(issuerConfig({ preset: 'kubernetes', revocationCheck: false })),
    )
  })
})
