// A real OIDC issuer for tests and the sandbox: HTTPS discovery and JWKS on loopback, minting
// tokens shaped like GitHub Actions' (or any claims), plus the malformed and forged tokens the
// negative tests need (alg none, HS256 keyed with the public key, unpublished keys). For the
// approvers' web login it is also an authorization server (authorization code + PKCE S256): the
// "user" who logs in is whoever the test set with setLoginUser (no login form). A login that asks
// for `offline_access` also gets a refresh token (rotated on each use); redeeming it gives an
// id_token with the claims the provider has for that person now (setUser: groups changed, or
// removed, which refuses the refresh).
import { createHash, createHmac, KeyObject, randomBytes, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createCa, issueCert } from './pki.ts'

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
  /** A GitHub-Actions-shaped token; overrides replace claims (iat/nbf/exp too); expiresInSeconds sets exp. */
  mintGitHubActions(
    overrides?: Record<string, unknown> & { expiresInSeconds?: number },
  ): Promise<string>
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
  privateKey: CryptoKey
  publicJwk: JWK
  publicPem: string
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  return {
    kid,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
    publicPem: await exportSPKI(publicKey),
  }
}

const b64url = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

export async function startOidcIssuer(opts: {
  dir: string
  audience?: string
}): Promise<OidcIssuer> {
  const ca = createCa(opts.dir, 'oidc-issuer-ca')
  const cert = issueCert(ca, 'oidc-issuer')
  const audience = opts.audience ?? 'gatehouse'
  const keys: Key[] = [await newKey('key-1')]
  const foreign = await newKey('key-foreign')
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
      if (req.url === '/.well-known/openid-configuration') {
        return json({
          issuer: discoveryIssuer ?? url,
          jwks_uri: `${url}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
          authorization_endpoint: `${url}/authorize`,
          token_endpoint: `${url}/token`,
          code_challenge_methods_supported: ['S256'],
          response_types_supported: ['id_token', 'code'],
          subject_types_supported: ['public'],
        })
      }
      if (req.url === '/jwks') {
        jwksRequests++
        return json({ keys: keys.map((k) => k.publicJwk) })
      }
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
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: o.kid ?? key.kid, ...o.header })
      .sign(key.privateKey)
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
      const repository =
        typeof rest['repository'] === 'string' ? rest['repository'] : 'octo-org/app'
      return mint({
        jti: `${now}-${Math.random().toString(36).slice(2)}`,
        sub: `repo:${repository}:ref:refs/heads/main`,
        aud: audience,
        ref: 'refs/heads/main',
        sha: 'd6b4a7a3c1f0e2b9a8c7d6e5f4a3b2c1d0e9f8a7',
        repository,
        repository_owner: repository.split('/')[0],
        repository_owner_id: '123456',
        run_id: '987654321',
        run_number: '42',
        run_attempt: '1',
        repository_visibility: 'private',
        repository_id: '654321',
        actor_id: '1001',
        actor: 'octocat',
        workflow: 'deploy',
        head_ref: '',
        base_ref: '',
        event_name: 'push',
        ref_type: 'branch',
        job_workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`,
        iss: url,
        nbf: now - 5,
        iat: now - 5,
        exp: now + (expiresInSeconds ?? 300),
        ...rest,
      })
    },
    async rotateKeys() {
      current = await newKey(`key-${keys.length + 1}`)
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
