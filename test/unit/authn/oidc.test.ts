// OIDC verification against a real HTTPS issuer (discovery + JWKS) with real signatures.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  authnConfigSchema,
  createOidcAuthenticator,
  type AuthnResult,
  type OidcConfig,
} from '../../../src/authn/index.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { tempDir } from '../../harness/temp-dir.ts'

let issuer: OidcIssuer
before(async () => {
  issuer = await startOidcIssuer({ dir: tempDir('gh-oidc-unit-') })
})
after(() => issuer.close())

function config(extra: Record<string, unknown> = {}): OidcConfig {
  const parsed = authnConfigSchema.parse({
    authenticators: [
      {
        oidc: {
          issuer: issuer.url,
          caFile: issuer.caFile,
          audiences: ['gatehouse'],
          preset: 'github-actions',
          ...extra,
        },
      },
    ],
  })
  const oidc = parsed.authenticators[0]?.oidc
  assert.ok(oidc)
  return oidc
}

const now = (): number => Math.floor(Date.now() / 1000)

function assertRejected(r: AuthnResult, code: string, detail: RegExp): void {
  assert.equal(r.outcome, 'rejected', JSON.stringify(r))
  if (r.outcome !== 'rejected') return
  assert.equal(r.code, code)
  assert.match(r.detail, detail)
}

describe('OIDC authenticator', () => {
  test('a GitHub Actions token becomes a named identity with groups and provenance', async () => {
    const auth = createOidcAuthenticator(config())
    const r = await auth.authenticate({
      bearerToken: await issuer.mintGitHubActions({
        repository: 'acme/deploy',
        repository_owner: 'acme',
        environment: 'prod',
        run_id: '77',
      }),
    })
    assert.equal(r.outcome, 'authenticated')
    if (r.outcome !== 'authenticated') return
    assert.equal(r.identity.name, 'github:acme/deploy')
    assert.deepEqual(r.identity.groups, [
      'github:acme',
      'github-repo:acme/deploy',
      'github-ref:acme/deploy:refs/heads/main',
      'github-env:acme/deploy:prod',
    ])
    assert.deepEqual(r.identity.extra['gatehouse.dev/run-id'], ['77'])
    assert.deepEqual(r.identity.extra['gatehouse.dev/issuer'], [issuer.url])
    assert.equal(r.identity.method, 'oidc')
    assert.equal(r.identity.claims['environment'], 'prod')
  })

  test('tokens of other issuers and opaque tokens are not for this authenticator', async () => {
    const auth = createOidcAuthenticator(config())
    assert.equal(
      (
        await auth.authenticate({
          bearerToken: await issuer.mintGitHubActions({ iss: 'https://elsewhere.example' }),
        })
      ).outcome,
      'not-applicable',
    )
    assert.equal(
      (await auth.authenticate({ bearerToken: 'opaque-token-value' })).outcome,
      'not-applicable',
    )
    assert.equal((await auth.authenticate({})).outcome, 'not-applicable')
  })

  const invalid: [string, () => Promise<string>, RegExp][] = [
    [
      'expired',
      () => issuer.mintGitHubActions({ exp: now() - 120, iat: now() - 600, nbf: now() - 600 }),
      /expired/,
    ],
    ['not yet valid', () => issuer.mintGitHubActions({ nbf: now() + 600 }), /nbf/],
    ['issued in the future', () => issuer.mintGitHubActions({ iat: now() + 600 }), /iat|future/],
    ['wrong audience', () => issuer.mintGitHubActions({ aud: 'sts.amazonaws.com' }), /aud/],
    [
      'no exp',
      () =>
        issuer.mint({
          iss: issuer.url,
          aud: 'gatehouse',
          sub: 'x',
          repository: 'a/b',
          repository_owner: 'a',
        }),
      /exp/,
    ],
    [
      'alg none',
      () => issuer.mint({ iss: issuer.url, aud: 'gatehouse', exp: now() + 60 }, { alg: 'none' }),
      /algorithm none is not allowed/,
    ],
    [
      'HS256 keyed with the public key',
      () => issuer.mint({ iss: issuer.url, aud: 'gatehouse', exp: now() + 60 }, { alg: 'HS256' }),
      /algorithm HS256 is not allowed/,
    ],
    [
      'signed by an unpublished key',
      () =>
        issuer.mint(
          { iss: issuer.url, aud: 'gatehouse', exp: now() + 60 },
          { signWith: 'foreign' },
        ),
      /no key .* matches/,
    ],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await issuer.mintGitHubActions()).split('.')
        return `${h}.${Buffer.from(JSON.stringify({ iss: issuer.url, aud: 'gatehouse', exp: now() + 60, repository: 'evil/x', repository_owner: 'evil' })).toString('base64url')}.${s}`
      },
      /signature verification failed/,
    ],
    [
      'missing preset claims',
      () =>
        issuer.mint({ iss: issuer.url, aud: 'gatehouse', exp: now() + 60, iat: now(), sub: 'x' }),
      /no 'repository' claim/,
    ],
  ]
  for (const [name, token, detail] of invalid) {
    test(`rejects: ${name}`, async () => {
      const auth = createOidcAuthenticator(config())
      assertRejected(
        await auth.authenticate({ bearerToken: await token() }),
        'GW_AUTHN_INVALID_TOKEN',
        detail,
      )
    })
  }

  test('successful verifications are cached for a minute at most and never past exp', async () => {
    let clock = Date.now()
    const auth = createOidcAuthenticator(config(), { now: () => clock })
    const token = await issuer.mintGitHubActions({ expiresInSeconds: 600 })
    const first = await auth.authenticate({ bearerToken: token })
    const second = await auth.authenticate({ bearerToken: token })
    assert.equal(first.outcome, 'authenticated')
    assert.ok(
      first.outcome === 'authenticated' &&
        second.outcome === 'authenticated' &&
        first.identity === second.identity,
      'served from the cache',
    )
    clock += 61_000
    const third = await auth.authenticate({ bearerToken: token })
    assert.ok(
      third.outcome === 'authenticated' &&
        first.outcome === 'authenticated' &&
        third.identity !== first.identity,
      'verified again after a minute',
    )
    const shortLived = await issuer.mintGitHubActions({ expiresInSeconds: 5 })
    clock = Date.now()
    assert.equal((await auth.authenticate({ bearerToken: shortLived })).outcome, 'authenticated')
    clock += 40_000 // past exp + skew: the cache must not keep it alive
    assert.equal((await auth.authenticate({ bearerToken: shortLived })).outcome, 'rejected')
  })

  test('requiredClaims must match exactly', async () => {
    const auth = createOidcAuthenticator(
      config({ requiredClaims: { ref: 'refs/heads/main', ref_type: 'branch' } }),
    )
    assert.equal(
      (await auth.authenticate({ bearerToken: await issuer.mintGitHubActions() })).outcome,
      'authenticated',
    )
    assertRejected(
      await auth.authenticate({
        bearerToken: await issuer.mintGitHubActions({ ref: 'refs/heads/feature' }),
      }),
      'GW_AUTHN_INVALID_TOKEN',
      /claim ref is not refs\/heads\/main/,
    )
  })

  test('key rotation: a token with a new kid triggers one JWKS refetch and is accepted', async () => {
    const auth = createOidcAuthenticator(config({ jwksRefreshCooldownSeconds: 0.5 }))
    assert.equal(
      (await auth.authenticate({ bearerToken: await issuer.mintGitHubActions() })).outcome,
      'authenticated',
    )
    const fetchesBefore = issuer.jwksRequests
    await issuer.rotateKeys()
    await new Promise((r) => setTimeout(r, 600)) // past the refetch cooldown
    assert.equal(
      (await auth.authenticate({ bearerToken: await issuer.mintGitHubActions() })).outcome,
      'authenticated',
    )
    assert.equal(issuer.jwksRequests, fetchesBefore + 1)
    // A burst of unknown kids does not hammer the issuer (cooldown).
    for (let i = 0; i < 5; i++)
      await auth.authenticate({
        bearerToken: await issuer.mint(
          { iss: issuer.url, aud: 'gatehouse', exp: now() + 60 },
          { signWith: 'foreign' },
        ),
      })
    assert.ok(
      issuer.jwksRequests <= fetchesBefore + 2,
      `JWKS fetched ${issuer.jwksRequests - fetchesBefore} times`,
    )
  })

  test('a discovery document naming another issuer is refused (issuer unavailable)', async () => {
    issuer.setDiscoveryIssuer('https://attacker.example')
    try {
      const auth = createOidcAuthenticator(config())
      assertRejected(
        await auth.authenticate({ bearerToken: await issuer.mintGitHubActions() }),
        'GW_AUTHN_ISSUER_UNAVAILABLE',
        /names issuer https:\/\/attacker\.example/,
      )
    } finally {
      issuer.setDiscoveryIssuer(undefined)
    }
  })

  test('an unreachable issuer is reported as unavailable, not as a bad token', async () => {
    const auth = createOidcAuthenticator({ ...config(), issuer: 'https://127.0.0.1:1' })
    const token = await issuer.mintGitHubActions({ iss: 'https://127.0.0.1:1' })
    assertRejected(
      await auth.authenticate({ bearerToken: token }),
      'GW_AUTHN_ISSUER_UNAVAILABLE',
      /discovery .* failed/,
    )
  })

  test('the kubernetes preset names a service account without becoming it', async () => {
    const auth = createOidcAuthenticator(config({ preset: 'kubernetes', name: 'prod' }), {
      defaultCluster: 'prod',
      tokenReviewer: () =>
        Promise.resolve({
          authenticated: true,
          user: { username: 'system:serviceaccount:ci:deployer' },
        }),
    })
    const token = await issuer.mint({
      iss: issuer.url,
      aud: ['gatehouse'],
      exp: now() + 600,
      iat: now(),
      sub: 'system:serviceaccount:ci:deployer',
      'kubernetes.io': {
        namespace: 'ci',
        serviceaccount: { name: 'deployer', uid: 'u1' },
        pod: { name: 'runner-1', uid: 'u2' },
      },
    })
    const r = await auth.authenticate({ bearerToken: token })
    assert.equal(r.outcome, 'authenticated')
    if (r.outcome !== 'authenticated') return
    assert.equal(r.identity.name, 'prod:serviceaccount:ci:deployer')
    assert.deepEqual(r.identity.groups, ['prod-namespace:ci'])
    assert.deepEqual(r.identity.extra['gatehouse.dev/pod-name'], ['runner-1'])
    const forged = await issuer.mint({
      iss: issuer.url,
      aud: 'gatehouse',
      exp: now() + 600,
      sub: 'system:serviceaccount:ci:deployer',
      'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'deployer' } },
    })
    assertRejected(
      await auth.authenticate({ bearerToken: forged }),
      'GW_AUTHN_INVALID_TOKEN',
      /disagree/,
    )
  })

  test('the gitlab-ci preset and custom claim mappings', async () => {
    const gitlab = createOidcAuthenticator(config({ preset: 'gitlab-ci' }))
    const r = await gitlab.authenticate({
      bearerToken: await issuer.mint({
        iss: issuer.url,
        aud: 'gatehouse',
        exp: now() + 60,
        project_path: 'grp/app',
        namespace_path: 'grp',
        ref_protected: 'true',
        pipeline_id: '9',
      }),
    })
    assert.equal(r.outcome === 'authenticated' && r.identity.name, 'gitlab:grp/app')
    assert.equal(
      r.outcome === 'authenticated' && r.identity.extra['gatehouse.dev/ref-protected']?.[0],
      'true',
    )
    const custom = createOidcAuthenticator(
      config({
        preset: undefined,
        claimMappings: {
          username: { claim: 'email', prefix: 'idp:' },
          groups: { claim: 'teams', prefix: 'team:' },
        },
      }),
    )
    const c = await custom.authenticate({
      bearerToken: await issuer.mint({
        iss: issuer.url,
        aud: 'gatehouse',
        exp: now() + 60,
        email: 'bot@example.com',
        teams: ['ops', 'sre'],
      }),
    })
    assert.equal(c.outcome === 'authenticated' && c.identity.name, 'idp:bot@example.com')
    assert.deepEqual(c.outcome === 'authenticated' && c.identity.groups, ['team:ops', 'team:sre'])
  })
})
