// A real OIDC issuer for tests and the sandbox: HTTPS discovery and JWKS on loopback, minting
// tokens shaped like GitHub Actions' and GitLab CI's (or any claims), plus the malformed and forged tokens the
// negative tests need (alg none, HS256 keyed with the public key, unpublished keys). For the
// approvers' web login it is also an authorization server (authorization code + PKCE S256): the
// "user" who logs in is whoever the test set with setLoginUser (no login form). A login that asks
// for `offline_access` also gets a refresh token (rotated on each use); redeeming it gives an
// id_token with the claims the provider has for that person now (setUser: groups changed, or
// removed, which refuses the refresh).
//
// With `shape`, the issuer is shaped like a real CI issuer, as their documentation and live
// endpoints show them (checked by test/unit/harness/oidc-issuer-shapes.test.ts):
// - 'github-actions' (token.actions.githubusercontent.com): its exact discovery document (no
//   authorization endpoints; JWKS at /.well-known/jwks), keys with a UUID kid and an X.509
//   certificate (x5c, x5t), token headers {typ, alg: RS256, x5t, kid};
// - 'gitlab-ci' (gitlab.com): its discovery document (Doorkeeper's, JWKS at
//   /oauth/discovery/keys), keys whose kid is their RFC 7638 thumbprint, headers {kid, typ, alg}.
import { execFileSync } from 'node:child_process'
import { createHash, createHmac, KeyObject, randomBytes, randomUUID, sign } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose'
import { createCa, issueCert } from './pki.ts'

export type IssuerShape = 'generic' | 'github-actions' | 'gitlab-ci'

export interface MintOptions {
  alg?: 'RS256' | 'none' | 'HS256'
  kid?: string
  header?: Record<string, unknown>
  /** 'rotated' uses the newest published key; 'foreign' a key never published in the JWKS. */
  signWith?: 'default' | 'rotated' | 'foreign'
}

export interface OidcIssuer {
  readonly url: string
  readonly caFile: string
  /** Sign exactly these claims (nothing is added). */
  mint(claims: Record<string, unknown>, opts?: MintOptions): Promise<string>
  /**
   * Sign a header and payload given as text, exactly as written (duplicate members, odd
   * whitespace, non-JSON payloads: what mint() cannot produce from objects), RS256 with the
   * current key unless `signWith` says otherwise.
   */
  mintRaw(headerText: string, payloadText: string, opts?: Pick<MintOptions, 'signWith'>): string
  /**
   * A GitHub-Actions-shaped token (every claim GitHub's issuer sets for a push to main; with an
   * `environment`, the environment subject); overrides replace claims (iat/nbf/exp too);
   * expiresInSeconds sets exp.
   */
  mintGitHubActions(
    overrides?: Record<string, unknown> & { expiresInSeconds?: number },
  ): Promise<string>
  /**
   * A GitLab-CI-shaped ID token (`id_tokens:` in .gitlab-ci.yml): every claim GitLab sets for a
   * branch pipeline, the environment claims when `environment` is given; overrides as above.
   */
  mintGitLabCi(overrides?: Record<string, unknown> & { expiresInSeconds?: number }): Promise<string>
  /** Publish a new key and sign subsequent default tokens with it. */
  rotateKeys(): Promise<void>
  /** Serve a different issuer value in discovery (to test the mismatch check). */
  setDiscoveryIssuer(value: string | undefined): void
  readonly publicKeyPem: string
  readonly jwksRequests: number
  /** The claims of the person the authorization endpoint logs in (undefined: refuses). */
  setLoginUser(claims: Record<string, unknown> | undefined): void
  /** Token requests served (authorization code exchanges that passed every check). */
  readonly codeExchanges: number
  /**
   * What the provider knows of `sub` now, for refresh tokens issued to it: new claims (groups
   * changed), or undefined (removed or disabled: its refresh tokens are refused).
   */
  setUser(sub: string, claims: Record<string, unknown> | undefined): void
  /** Refresh-token grants served (that passed every check). */
  readonly refreshes: number
  close(): Promise<void>
}

interface Key {
  kid: string
  /** SHA-1 thumbprint of the key's certificate (github-actions shape). */
  x5t?: string
  privateKey: CryptoKey
  publicJwk: JWK
  publicPem: string
}

/** A self-signed certificate for the key, as GitHub publishes with each key: [x5c, x5t]. */
async function certificateOf(
  privateKey: CryptoKey,
  dir: string,
  kid: string,
): Promise<[string, string]> {
  const keyFile = join(dir, `${kid}.key`)
  const derFile = join(dir, `${kid}.der`)
  writeFileSync(keyFile, await exportPKCS8(privateKey), { mode: 0o600 })
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-subj',
      '/CN=oidc-issuer-signing',
      '-days',
      '2',
      '-outform',
      'DER',
      '-out',
      derFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
  )
  const der = readFileSync(derFile)
  return [der.toString('base64'), createHash('sha1').update(der).digest('base64url')]
}

async function newKey(name: string, shape: IssuerShape, dir: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = await exportJWK(publicKey)
  const publicPem = await exportSPKI(publicKey)
  if (shape === 'github-actions') {
    const kid = randomUUID()
    const [x5c, x5t] = await certificateOf(privateKey, dir, kid)
    const publicJwk = { ...jwk, kid, alg: 'RS256', use: 'sig', x5c: [x5c], x5t }
    return { kid, x5t, privateKey, publicJwk, publicPem }
  }
  const kid = shape === 'gitlab-ci' ? await calculateJwkThumbprint(jwk, 'sha256') : name
  return { kid, privateKey, publicJwk: { ...jwk, kid, use: 'sig', alg: 'RS256' }, publicPem }
}

/** The discovery document of each shape, for the issuer at `url`. */
function discoveryOf(shape: IssuerShape, url: string, issuer: string): Record<string, unknown> {
  if (shape === 'github-actions')
    return {
      issuer,
      jwks_uri: `${url}/.well-known/jwks`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      claims_supported: GITHUB_CLAIMS_SUPPORTED,
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid'],
    }
  if (shape === 'gitlab-ci')
    return {
      issuer,
      authorization_endpoint: `${url}/oauth/authorize`,
      token_endpoint: `${url}/oauth/token`,
      revocation_endpoint: `${url}/oauth/revoke`,
      introspection_endpoint: `${url}/oauth/introspect`,
      userinfo_endpoint: `${url}/oauth/userinfo`,
      jwks_uri: `${url}/oauth/discovery/keys`,
      scopes_supported: [
        'api',
        'read_api',
        'read_user',
        'read_repository',
        'openid',
        'profile',
        'email',
      ],
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      grant_types_supported: [
        'authorization_code',
        'password',
        'client_credentials',
        'device_code',
        'refresh_token',
      ],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claim_types_supported: ['normal'],
      claims_supported: GITLAB_CLAIMS_SUPPORTED,
      code_challenge_methods_supported: ['plain', 'S256'],
    }
  return {
    issuer,
    jwks_uri: `${url}/jwks`,
    id_token_signing_alg_values_supported: ['RS256'],
    authorization_endpoint: `${url}/authorize`,
    token_endpoint: `${url}/token`,
    code_challenge_methods_supported: ['S256'],
    response_types_supported: ['id_token', 'code'],
    subject_types_supported: ['public'],
  }
}

/** token.actions.githubusercontent.com's claims_supported. */
const GITHUB_CLAIMS_SUPPORTED = [
  'sub',
  'aud',
  'exp',
  'iat',
  'iss',
  'jti',
  'nbf',
  'ref',
  'sha',
  'repository',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'enterprise',
  'enterprise_id',
  'run_id',
  'run_number',
  'run_attempt',
  'actor',
  'actor_id',
  'workflow',
  'workflow_ref',
  'workflow_sha',
  'head_ref',
  'base_ref',
  'event_name',
  'ref_type',
  'ref_protected',
  'environment',
  'environment_node_id',
  'job_workflow_ref',
  'job_workflow_sha',
  'repository_visibility',
  'runner_environment',
  'issuer_scope',
]

/** gitlab.com's claims_supported (its OAuth/OIDC provider's; CI ID tokens carry more). */
const GITLAB_CLAIMS_SUPPORTED = [
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'sub_legacy',
  'name',
  'nickname',
  'preferred_username',
  'email',
  'email_verified',
  'website',
  'profile',
  'picture',
  'groups',
  'groups_direct',
  'https://gitlab.org/claims/groups/owner',
  'https://gitlab.org/claims/groups/maintainer',
  'https://gitlab.org/claims/groups/developer',
]

const b64url = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

export async function startOidcIssuer(opts: {
  dir: string
  audience?: string
  /** Shaped like a real CI issuer (discovery, keys, headers); default: a generic issuer. */
  shape?: IssuerShape
}): Promise<OidcIssuer> {
  const ca = createCa(opts.dir, 'oidc-issuer-ca')
  const cert = issueCert(ca, 'oidc-issuer')
  const audience = opts.audience ?? 'gatehouse'
  const shape = opts.shape ?? 'generic'
  const keys: Key[] = [await newKey('key-1', shape, opts.dir)]
  const foreign = await newKey('key-foreign', shape, opts.dir)
  let current = keys[0]!
  let jwksRequests = 0
  let discoveryIssuer: string | undefined
  let url = ''
  let loginUser: Record<string, unknown> | undefined
  let codeExchanges = 0
  let refreshes = 0
  const codes = new Map<
    string,
    {
      clientId: string
      redirectUri: string
      challenge: string
      nonce: string
      offline: boolean
      claims: Record<string, unknown>
    }
  >()
  /** The provider's directory (by subject) and the refresh tokens it issued. */
  const users = new Map<string, Record<string, unknown>>()
  const refreshTokens = new Map<string, { clientId: string; sub: string }>()

  /** GET /authorize: checks the PKCE request and redirects back with a one-time code. */
  const authorize = (q: URLSearchParams): { status: number; location?: string; error?: string } => {
    const redirectUri = q.get('redirect_uri') ?? ''
    if (q.get('response_type') !== 'code')
      return { status: 400, error: 'unsupported_response_type' }
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge'))
      return { status: 400, error: 'PKCE S256 required' }
    if (!q.get('client_id') || !redirectUri.startsWith('https://') || !q.get('state'))
      return { status: 400, error: 'invalid_request' }
    if (!loginUser) return { status: 401, error: 'login refused' }
    const code = randomBytes(16).toString('base64url')
    codes.set(code, {
      clientId: q.get('client_id')!,
      redirectUri,
      challenge: q.get('code_challenge')!,
      nonce: q.get('nonce') ?? '',
      offline: (q.get('scope') ?? '').split(' ').includes('offline_access'),
      claims: loginUser,
    })
    const back = new URL(redirectUri)
    back.searchParams.set('code', code)
    back.searchParams.set('state', q.get('state')!)
    return { status: 302, location: back.toString() }
  }

  /** POST /token: exchanges a code once, checking client, redirect URI and the PKCE verifier. */
  const token = async (form: URLSearchParams): Promise<{ status: number; body: unknown }> => {
    if (form.get('grant_type') === 'refresh_token') return refresh(form)
    const entry = codes.get(form.get('code') ?? '')
    codes.delete(form.get('code') ?? '')
    const verifier = form.get('code_verifier') ?? ''
    if (
      form.get('grant_type') !== 'authorization_code' ||
      !entry ||
      entry.clientId !== form.get('client_id') ||
      entry.redirectUri !== form.get('redirect_uri') ||
      createHash('sha256').update(verifier).digest('base64url') !== entry.challenge
    )
      return { status: 400, body: { error: 'invalid_grant' } }
    codeExchanges++
    const now = Math.floor(Date.now() / 1000)
    const idToken = await mint({
      iss: url,
      aud: entry.clientId,
      iat: now,
      exp: now + 300,
      ...(entry.nonce ? { nonce: entry.nonce } : {}),
      ...entry.claims,
    })
    const sub = String(entry.claims['sub'])
    users.set(sub, entry.claims)
    return {
      status: 200,
      body: {
        id_token: idToken,
        access_token: 'opaque',
        token_type: 'Bearer',
        expires_in: 300,
        ...(entry.offline ? { refresh_token: refreshTokenFor(entry.clientId, sub) } : {}),
      },
    }
  }

  const refreshTokenFor = (clientId: string, sub: string): string => {
    const t = randomBytes(24).toString('base64url')
    refreshTokens.set(t, { clientId, sub })
    return t
  }

  /** POST /token with a refresh token: used once (rotated); the person's claims as they are now. */
  const refresh = async (form: URLSearchParams): Promise<{ status: number; body: unknown }> => {
    const t = refreshTokens.get(form.get('refresh_token') ?? '')
    refreshTokens.delete(form.get('refresh_token') ?? '')
    const claims = t ? users.get(t.sub) : undefined
    if (!t || !claims || t.clientId !== form.get('client_id'))
      return { status: 400, body: { error: 'invalid_grant' } }
    refreshes++
    const now = Math.floor(Date.now() / 1000)
    const idToken = await mint({ iss: url, aud: t.clientId, iat: now, exp: now + 300, ...claims })
    return {
      status: 200,
      body: {
        id_token: idToken,
        access_token: 'opaque',
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: refreshTokenFor(t.clientId, t.sub),
      },
    }
  }

  const server: Server = createServer(
    { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) },
    (req, res) => {
      const json = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
      if (req.url === '/.well-known/openid-configuration')
        return json(discoveryOf(shape, url, discoveryIssuer ?? url))
      if (
        req.url === '/jwks' ||
        req.url === '/.well-known/jwks' ||
        req.url === '/oauth/discovery/keys'
      ) {
        jwksRequests++
        return json({ keys: keys.map((k) => k.publicJwk) })
      }
      // GitLab's endpoints are under /oauth/
      if (req.url?.startsWith('/oauth/')) req.url = req.url.slice('/oauth'.length)
      if (req.url?.startsWith('/authorize?')) {
        const r = authorize(new URL(req.url, url).searchParams)
        res.writeHead(r.status, r.location ? { location: r.location } : {})
        res.end(r.error ?? '')
        return
      }
      if (req.url === '/token' && req.method === 'POST') {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          void token(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))).then((r) => {
            res.writeHead(r.status, { 'content-type': 'application/json' })
            res.end(JSON.stringify(r.body))
          })
        })
        return
      }
      res.writeHead(404)
      res.end()
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  const mint = async (claims: Record<string, unknown>, o: MintOptions = {}): Promise<string> => {
    const alg = o.alg ?? 'RS256'
    if (alg === 'none')
      return `${b64url({ alg: 'none', typ: 'JWT', ...o.header })}.${b64url(claims)}.`
    if (alg === 'HS256') {
      // The classic key-confusion forgery: HMAC keyed with the issuer's public key.
      const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT', kid: current.kid, ...o.header })}.${b64url(claims)}`
      return `${signingInput}.${createHmac('sha256', current.publicPem).update(signingInput).digest('base64url')}`
    }
    const key = o.signWith === 'foreign' ? foreign : current
    const kid = o.kid ?? key.kid
    // each issuer's header members, in its order
    const header =
      shape === 'github-actions'
        ? { typ: 'JWT', alg: 'RS256', ...(key.x5t ? { x5t: key.x5t } : {}), kid }
        : shape === 'gitlab-ci'
          ? { kid, typ: 'JWT', alg: 'RS256' }
          : { alg: 'RS256', typ: 'JWT', kid }
    return new SignJWT(claims).setProtectedHeader({ ...header, ...o.header }).sign(key.privateKey)
  }

  const mintRaw = (
    headerText: string,
    payloadText: string,
    o: Pick<MintOptions, 'signWith'> = {},
  ): string => {
    const key = o.signWith === 'foreign' ? foreign : current
    const input = `${b64url(headerText)}.${b64url(payloadText)}`
    const signature = sign('RSA-SHA256', Buffer.from(input), KeyObject.from(key.privateKey))
    return `${input}.${signature.toString('base64url')}`
  }

  return {
    url,
    caFile: ca.certFile,
    mint,
    mintRaw,
    async mintGitHubActions(overrides = {}) {
      const now = Math.floor(Date.now() / 1000)
      const { expiresInSeconds, ...rest } = overrides
      const text = (k: string, d: string): string => (typeof rest[k] === 'string' ? rest[k] : d)
      const repository = text('repository', 'octo-org/app')
      const ref = text('ref', 'refs/heads/main')
      const environment = typeof rest['environment'] === 'string' ? rest['environment'] : undefined
      const sha = 'd6b4a7a3c1f0e2b9a8c7d6e5f4a3b2c1d0e9f8a7'
      const workflowRef = `${repository}/.github/workflows/deploy.yml@${ref}`
      // the claims of GitHub's documented example token, in its order, plus those its
      // claims_supported lists for every job (workflow_ref/_sha, job_workflow_sha, ref_protected)
      return mint({
        jti: randomUUID(),
        sub: environment
          ? `repo:${repository}:environment:${environment}`
          : `repo:${repository}:ref:${ref}`,
        ...(environment ? { environment } : {}),
        aud: audience,
        ref,
        sha,
        repository,
        repository_owner: repository.split('/')[0],
        actor_id: '1001',
        repository_visibility: 'private',
        repository_id: '654321',
        repository_owner_id: '123456',
        run_id: '987654321',
        run_number: '42',
        run_attempt: '1',
        runner_environment: 'github-hosted',
        actor: 'octocat',
        workflow: 'deploy',
        head_ref: '',
        base_ref: '',
        event_name: 'push',
        ref_protected: 'false',
        ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
        workflow_ref: workflowRef,
        workflow_sha: sha,
        job_workflow_ref: workflowRef,
        job_workflow_sha: sha,
        iss: url,
        nbf: now - 600,
        exp: now + (expiresInSeconds ?? 300),
        iat: now,
        ...rest,
      })
    },
    async mintGitLabCi(overrides = {}) {
      const now = Math.floor(Date.now() / 1000)
      const { expiresInSeconds, ...rest } = overrides
      const text = (k: string, d: string): string => (typeof rest[k] === 'string' ? rest[k] : d)
      const project = text('project_path', 'my-group/my-project')
      const namespace = text('namespace_path', project.split('/').slice(0, -1).join('/'))
      const refType = text('ref_type', 'branch')
      const ref = text('ref', 'main')
      const environment = typeof rest['environment'] === 'string' ? rest['environment'] : undefined
      const refPath = `refs/${refType === 'tag' ? 'tags' : 'heads'}/${ref}`
      const sha = '714a629c0b401fdce83e847fc9589983fc6f46bc'
      const host = new URL(url).host
      // the claims GitLab's ID token documentation lists as always present, in its order; the
      // environment ones when the job names an environment
      return mint({
        namespace_id: '72',
        namespace_path: namespace,
        project_id: '20',
        project_path: project,
        user_id: '1',
        user_login: 'sample-user',
        user_email: 'sample-user@example.com',
        user_access_level: 'developer',
        pipeline_id: '574',
        pipeline_source: 'push',
        job_id: '302',
        ref,
        ref_type: refType,
        ref_path: refPath,
        ref_protected: 'true',
        groups_direct: [namespace],
        ...(environment
          ? {
              environment,
              environment_protected: 'true',
              deployment_tier: 'production',
              environment_action: 'start',
            }
          : {}),
        runner_id: 1,
        runner_environment: 'gitlab-hosted',
        sha,
        project_visibility: 'private',
        ci_config_ref_uri: `${host}/${project}//.gitlab-ci.yml@${refPath}`,
        ci_config_sha: sha,
        jti: randomUUID(),
        iss: url,
        iat: now,
        nbf: now - 5,
        exp: now + (expiresInSeconds ?? 3600),
        sub: `project_path:${project}:ref_type:${refType}:ref:${ref}`,
        aud: audience,
        ...rest,
      })
    },
    async rotateKeys() {
      current = await newKey(`key-${keys.length + 1}`, shape, opts.dir)
      keys.push(current)
    },
    setDiscoveryIssuer(value) {
      discoveryIssuer = value
    },
    get publicKeyPem() {
      return current.publicPem
    },
    get jwksRequests() {
      return jwksRequests
    },
    setLoginUser(claims) {
      loginUser = claims
    },
    get codeExchanges() {
      return codeExchanges
    },
    setUser(sub, claims) {
      if (claims) users.set(sub, claims)
      else users.delete(sub)
    },
    get refreshes() {
      return refreshes
    },
    close() {
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
