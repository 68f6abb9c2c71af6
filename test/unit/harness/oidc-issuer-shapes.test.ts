// The CI issuer fixture against the real issuers' documented shapes: GitHub Actions'
// (token.actions.githubusercontent.com) and GitLab CI's ID tokens (gitlab.com). GitHub's and
// GitLab's issuers cannot run here, so the e2e tests' tokens are only as good as this fixture:
// every header member, every claim (name and type, the subject's format) and the discovery
// document must be the ones those issuers produce, as their documentation shows them:
// - GitHub: "OpenID Connect reference" (docs.github.com/en/actions/reference/security/oidc) and
//   the example token of "About security hardening with OpenID Connect"; the discovery document
//   served at https://token.actions.githubusercontent.com/.well-known/openid-configuration.
// - GitLab: "OpenID Connect (OIDC) Authentication Using ID Tokens"
//   (docs.gitlab.com/ci/secrets/id_token_authentication), its "Token payload" tables and example;
//   the discovery document served at https://gitlab.com/.well-known/openid-configuration.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { createLocalJWKSet, decodeProtectedHeader, decodeJwt, jwtVerify, type JWK } from 'jose'
import { Agent, request } from 'undici'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { tempDir } from '../../harness/temp-dir.ts'

type Kind = 'string' | 'number' | 'string[]' | RegExp
const SHA = /^[0-9a-f]{40}$/
const DIGITS = /^[0-9]+$/
const BOOL = /^(true|false)$/

/** GitHub: the example token's claims, and the ones claims_supported adds for every job. */
const GITHUB_CLAIMS: Record<string, Kind> = {
  jti: 'string',
  sub: /^repo:[^/:]+\/[^/:]+:(ref:refs\/(heads|tags)\/.+|environment:.+|pull_request)$/,
  aud: 'string',
  ref: /^refs\/(heads|tags|pull)\/.+$/,
  sha: SHA,
  repository: /^[^/]+\/[^/]+$/,
  repository_owner: 'string',
  actor_id: DIGITS,
  repository_visibility: /^(public|private|internal)$/,
  repository_id: DIGITS,
  repository_owner_id: DIGITS,
  run_id: DIGITS,
  run_number: DIGITS,
  run_attempt: DIGITS,
  runner_environment: /^(github-hosted|self-hosted)$/,
  actor: 'string',
  workflow: 'string',
  head_ref: 'string',
  base_ref: 'string',
  event_name: 'string',
  ref_protected: BOOL,
  ref_type: /^(branch|tag)$/,
  workflow_ref: /^[^/]+\/[^/]+\/\.github\/workflows\/.+@refs\/.+$/,
  workflow_sha: SHA,
  job_workflow_ref: /^[^/]+\/[^/]+\/\.github\/workflows\/.+@refs\/.+$/,
  job_workflow_sha: SHA,
  iss: 'string',
  nbf: 'number',
  exp: 'number',
  iat: 'number',
}
/** Only for a job that names an environment (then also in sub). */
const GITHUB_ENVIRONMENT_CLAIMS: Record<string, Kind> = { environment: 'string' }

/** GitLab: the claims its table marks "Always", for a branch or tag pipeline. */
const GITLAB_CLAIMS: Record<string, Kind> = {
  namespace_id: DIGITS,
  namespace_path: 'string',
  project_id: DIGITS,
  project_path: /^[^:]+\/[^:]+$/,
  user_id: DIGITS,
  user_login: 'string',
  user_email: 'string',
  user_access_level: /^(guest|planner|reporter|developer|maintainer|owner)$/,
  pipeline_id: DIGITS,
  pipeline_source: 'string',
  job_id: DIGITS,
  ref: /^(?!refs\/)/, // the bare branch or tag name; the full ref is ref_path
  ref_type: /^(branch|tag)$/,
  ref_path: /^refs\/(heads|tags)\/.+$/,
  ref_protected: BOOL,
  groups_direct: 'string[]', // "0 to 200 groups"
  runner_id: 'number',
  runner_environment: /^(gitlab-hosted|self-hosted)$/,
  sha: SHA,
  project_visibility: /^(internal|private|public)$/,
  ci_config_ref_uri: /^[^/]+\/[^:]+\/\/\.gitlab-ci\.yml@refs\/(heads|tags)\/.+$/,
  ci_config_sha: SHA,
  jti: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  iss: 'string',
  iat: 'number',
  nbf: 'number',
  exp: 'number',
  sub: /^project_path:[^:]+\/[^:]+:ref_type:(branch|tag):ref:.+$/,
  aud: 'string',
}
/** "Job specifies an environment". */
const GITLAB_ENVIRONMENT_CLAIMS: Record<string, Kind> = {
  environment: 'string',
  environment_protected: BOOL,
  deployment_tier: /^(production|staging|testing|development|other)$/,
  environment_action: /^(start|prepare|stop|verify|access)$/,
}

function assertShape(claims: Record<string, unknown>, shape: Record<string, Kind>): void {
  assert.deepEqual(Object.keys(claims).sort(), Object.keys(shape).sort(), 'exactly these claims')
  for (const [name, kind] of Object.entries(shape)) {
    const v = claims[name]
    if (kind instanceof RegExp) {
      assert.equal(typeof v, 'string', `${name} is a string`)
      assert.match(v as string, kind, name)
    } else if (kind === 'string[]') {
      assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${name}: ${String(v)}`)
    } else assert.equal(typeof v, kind, `${name} is a ${kind}`)
  }
}

async function getJson(issuer: OidcIssuer, url: string): Promise<Record<string, unknown>> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(issuer.caFile) } })
  try {
    const r = await request(url, { dispatcher })
    assert.equal(r.statusCode, 200, url)
    return (await r.body.json()) as Record<string, unknown>
  } finally {
    await dispatcher.close()
  }
}

/** The token verifies with the keys its discovery document points to; returns that key. */
async function verifyThroughDiscovery(issuer: OidcIssuer, token: string): Promise<JWK> {
  const discovery = await getJson(issuer, `${issuer.url}/.well-known/openid-configuration`)
  const jwks = (await getJson(issuer, String(discovery['jwks_uri']))) as { keys: JWK[] }
  await jwtVerify(token, createLocalJWKSet(jwks), { issuer: issuer.url, algorithms: ['RS256'] })
  const kid = decodeProtectedHeader(token).kid
  const key = jwks.keys.find((k) => k.kid === kid)
  assert.ok(key, `the JWKS has the token's kid ${kid}`)
  return key
}

describe('GitHub Actions issuer fixture (shape github-actions)', () => {
  let issuer: OidcIssuer
  before(async () => {
    issuer = await startOidcIssuer({ dir: tempDir('gh-issuer-github-'), shape: 'github-actions' })
  })
  after(() => issuer.close())

  test('its discovery document has exactly the fields GitHub serves', async () => {
    const d = await getJson(issuer, `${issuer.url}/.well-known/openid-configuration`)
    assert.deepEqual(Object.keys(d).sort(), [
      'claims_supported',
      'id_token_signing_alg_values_supported',
      'issuer',
      'jwks_uri',
      'response_types_supported',
      'scopes_supported',
      'subject_types_supported',
    ])
    assert.equal(d['issuer'], issuer.url)
    assert.equal(d['jwks_uri'], `${issuer.url}/.well-known/jwks`)
    assert.deepEqual(d['subject_types_supported'], ['public', 'pairwise'])
    assert.deepEqual(d['response_types_supported'], ['id_token'])
    assert.deepEqual(d['id_token_signing_alg_values_supported'], ['RS256'])
    assert.deepEqual(d['scopes_supported'], ['openid'])
    for (const claim of [...Object.keys(GITHUB_CLAIMS), 'environment'])
      assert.ok((d['claims_supported'] as string[]).includes(claim), `claims_supported: ${claim}`)
  })

  test('a token has the header {typ: JWT, alg: RS256, x5t, kid}; x5t is its certificate’s SHA-1', async () => {
    const token = await issuer.mintGitHubActions()
    const header = decodeProtectedHeader(token)
    assert.deepEqual(Object.keys(header), ['typ', 'alg', 'x5t', 'kid'])
    assert.equal(header.typ, 'JWT')
    assert.equal(header.alg, 'RS256')
    const key = await verifyThroughDiscovery(issuer, token)
    assert.match(
      String(header.kid),
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    )
    const der = Buffer.from(key.x5c![0]!, 'base64')
    assert.equal(header.x5t, createHash('sha1').update(der).digest('base64url'))
    assert.equal(key.x5t, header.x5t)
    assert.deepEqual(
      { kty: key.kty, alg: key.alg, use: key.use, e: key.e },
      { kty: 'RSA', alg: 'RS256', use: 'sig', e: 'AQAB' },
    )
  })

  test('a push to main has exactly GitHub’s claims, with its value types and subject format', async () => {
    const claims = decodeJwt(await issuer.mintGitHubActions({ repository: 'octo-org/octo-repo' }))
    assertShape(claims, GITHUB_CLAIMS)
    assert.equal(claims.sub, 'repo:octo-org/octo-repo:ref:refs/heads/main')
    assert.equal(claims['repository_owner'], 'octo-org')
    assert.equal(claims.iss, issuer.url)
    // GitHub's example: nbf 10 minutes before iat, exp 5 minutes after
    assert.equal(claims.iat! - claims.nbf!, 600)
    assert.equal(claims.exp! - claims.iat!, 300)
  })

  test('a job with an environment gets the environment claim and subject', async () => {
    const claims = decodeJwt(
      await issuer.mintGitHubActions({ repository: 'octo-org/octo-repo', environment: 'prod' }),
    )
    assertShape(claims, { ...GITHUB_CLAIMS, ...GITHUB_ENVIRONMENT_CLAIMS })
    assert.equal(claims.sub, 'repo:octo-org/octo-repo:environment:prod')
  })

  test('a tag push names the tag in ref, ref_type and sub', async () => {
    const claims = decodeJwt(await issuer.mintGitHubActions({ ref: 'refs/tags/v1.2.0' }))
    assertShape(claims, GITHUB_CLAIMS)
    assert.equal(claims['ref_type'], 'tag')
    assert.equal(claims.sub, 'repo:octo-org/app:ref:refs/tags/v1.2.0')
  })
})

describe('GitLab CI issuer fixture (shape gitlab-ci)', () => {
  let issuer: OidcIssuer
  before(async () => {
    issuer = await startOidcIssuer({ dir: tempDir('gh-issuer-gitlab-'), shape: 'gitlab-ci' })
  })
  after(() => issuer.close())

  test('its discovery document has the fields gitlab.com serves', async () => {
    const d = await getJson(issuer, `${issuer.url}/.well-known/openid-configuration`)
    assert.deepEqual(Object.keys(d).sort(), [
      'authorization_endpoint',
      'claim_types_supported',
      'claims_supported',
      'code_challenge_methods_supported',
      'grant_types_supported',
      'id_token_signing_alg_values_supported',
      'introspection_endpoint',
      'issuer',
      'jwks_uri',
      'response_modes_supported',
      'response_types_supported',
      'revocation_endpoint',
      'scopes_supported',
      'subject_types_supported',
      'token_endpoint',
      'token_endpoint_auth_methods_supported',
      'userinfo_endpoint',
    ])
    assert.equal(d['issuer'], issuer.url)
    assert.equal(d['jwks_uri'], `${issuer.url}/oauth/discovery/keys`)
    assert.equal(d['authorization_endpoint'], `${issuer.url}/oauth/authorize`)
    assert.equal(d['token_endpoint'], `${issuer.url}/oauth/token`)
    assert.deepEqual(d['response_types_supported'], ['code'])
    assert.deepEqual(d['subject_types_supported'], ['public'])
    assert.deepEqual(d['id_token_signing_alg_values_supported'], ['RS256'])
    assert.deepEqual(d['code_challenge_methods_supported'], ['plain', 'S256'])
    assert.ok((d['scopes_supported'] as string[]).includes('openid'))
  })

  test('a token has the header {kid, typ: JWT, alg: RS256}; kid is the key’s RFC 7638 thumbprint', async () => {
    const token = await issuer.mintGitLabCi()
    const header = decodeProtectedHeader(token)
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'kid', 'typ'])
    assert.equal(header.typ, 'JWT')
    assert.equal(header.alg, 'RS256')
    const key = await verifyThroughDiscovery(issuer, token)
    const { calculateJwkThumbprint } = await import('jose')
    assert.equal(header.kid, await calculateJwkThumbprint(key, 'sha256'))
    assert.deepEqual(Object.keys(key).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use'])
  })

  test('a branch pipeline has exactly GitLab’s always-present claims, types and subject format', async () => {
    const claims = decodeJwt(await issuer.mintGitLabCi({ project_path: 'my-group/my-project' }))
    assertShape(claims, GITLAB_CLAIMS)
    assert.equal(claims.sub, 'project_path:my-group/my-project:ref_type:branch:ref:main')
    assert.equal(claims['namespace_path'], 'my-group')
    assert.equal(claims['ref_path'], 'refs/heads/main')
    assert.equal(claims.iss, issuer.url)
    assert.equal(
      claims['ci_config_ref_uri'],
      `${new URL(issuer.url).host}/my-group/my-project//.gitlab-ci.yml@refs/heads/main`,
    )
  })

  test('a job with an environment gets the four environment claims; subgroups and tags keep the formats', async () => {
    const claims = decodeJwt(
      await issuer.mintGitLabCi({
        project_path: 'acme/platform/api',
        ref: 'v2.0.0',
        ref_type: 'tag',
        environment: 'production',
      }),
    )
    assertShape(claims, { ...GITLAB_CLAIMS, ...GITLAB_ENVIRONMENT_CLAIMS })
    assert.equal(claims['namespace_path'], 'acme/platform')
    assert.equal(claims['ref_path'], 'refs/tags/v2.0.0')
    assert.equal(claims.sub, 'project_path:acme/platform/api:ref_type:tag:ref:v2.0.0')
  })
})
