// Who is at the approvals web page: an OIDC login (authorization code + PKCE S256, RFC 7636)
// against the approvers' identity provider, or, only when the configuration says so, a local
// development login. A login in flight keeps nothing on the server: its state, PKCE verifier,
// nonce and destination travel in a sealed cookie (AES-256-GCM with a key of this process), so
// no number of unauthenticated `GET /login/oidc` grows memory. Sessions live in this process (a
// restart logs people out; at most MAX_SESSIONS, the oldest ended first); the cookie holds only
// a random id: `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax (Lax, not Strict, so the
// redirect back from the identity provider still carries it; every POST also needs a CSRF token
// and a same-origin Origin header). When the provider gives a refresh token, the approver's
// groups are read again from it before each decision.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload } from 'jose'
import type { Identity } from '../authn/index.ts'
import { makeFetch, type Fetch } from '../authn/oidc.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import type { ApprovalDecision } from '../approval/record.ts'

type OidcLoginConfig = NonNullable<NonNullable<ApprovalsConfig['web']>['oidc']>

export const SESSION_COOKIE = '__Host-gatehouse_session'
export const LOGIN_COOKIE = '__Host-gatehouse_login'
/** The login form's CSRF token before anyone is signed in (double-submit cookie). */
export const LOGIN_CSRF_COOKIE = '__Host-gatehouse_login_csrf'
/** A login must come back from the identity provider within this time. */
export const LOGIN_TTL_SECONDS = 600
/** Signed-in sessions kept at most (each needed a successful login). */
export const MAX_SESSIONS = 10_000

export interface WebSession {
  identity: Identity
  csrf: string
  via: ApprovalDecision['via']
  expiresAt: number
  /** OIDC logins whose provider issued one: re-reads the groups before each decision. */
  refreshToken?: string
}

export const random = (): string => randomBytes(32).toString('base64url')

export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim()
  }
  return out
}

export function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}`
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Small values sealed into a cookie: only this process can read or forge them. */
export class CookieSeal {
  readonly #key = randomBytes(32)

  seal(value: unknown): string {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.#key, iv)
    const data = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()])
    return Buffer.concat([iv, c.getAuthTag(), data]).toString('base64url')
  }

  open(sealed: string | undefined): unknown {
    if (!sealed) return undefined
    try {
      const raw = Buffer.from(sealed, 'base64url')
      const d = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12))
      d.setAuthTag(raw.subarray(12, 28))
      return JSON.parse(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8'))
    } catch {
      return undefined
    }
  }
}

export class WebSessions {
  readonly #sessions = new Map<string, WebSession>()
  readonly #ttlMs: number
  constructor(ttlSeconds: number) {
    this.#ttlMs = ttlSeconds * 1000
  }
  get ttlSeconds(): number {
    return this.#ttlMs / 1000
  }
  get size(): number {
    return this.#sessions.size
  }
  create(identity: Identity, via: WebSession['via'], refreshToken?: string): string {
    const id = random()
    for (const [k, s] of this.#sessions) if (s.expiresAt < Date.now()) this.#sessions.delete(k)
    // Map order is insertion order: the oldest session goes first.
    while (this.#sessions.size >= MAX_SESSIONS)
      this.#sessions.delete(this.#sessions.keys().next().value!)
    this.#sessions.set(id, {
      identity,
      via,
      csrf: random(),
      expiresAt: Date.now() + this.#ttlMs,
      ...(refreshToken ? { refreshToken } : {}),
    })
    return id
  }
  get(req: IncomingMessage): WebSession | undefined {
    const id = cookies(req)[SESSION_COOKIE]
    const s = id ? this.#sessions.get(id) : undefined
    if (!s || s.expiresAt < Date.now()) return undefined
    return s
  }
  end(req: IncomingMessage): void {
    const id = cookies(req)[SESSION_COOKIE]
    if (id) this.#sessions.delete(id)
  }
}

interface Discovery {
  authorization_endpoint: string
  token_endpoint: string
  jwks_uri: string
}

/** One login in flight, sealed in its cookie: what the callback must see again. */
interface PendingLogin {
  state: string
  verifier: string
  nonce: string
  next: string
  exp: number
}

const isPending = (v: unknown): v is PendingLogin =>
  typeof v === 'object' &&
  v !== null &&
  ['state', 'verifier', 'nonce', 'next'].every(
    (k) => typeof (v as Record<string, unknown>)[k] === 'string',
  ) &&
  typeof (v as { exp?: unknown }).exp === 'number'

/** OAuth error codes are short ASCII words (RFC 6749 §4.1.2.1); anything else is not shown. */
const errorCode = (v: string | null): string => (v && /^[a-z_]{1,64}$/.test(v) ? v : 'an error')

export class OidcLogin {
  readonly #config: OidcLoginConfig
  readonly #fetch: Fetch
  readonly #secret: string | undefined
  readonly #seal = new CookieSeal()
  #discovery: Promise<Discovery> | undefined
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined

  constructor(config: OidcLoginConfig) {
    this.#config = config
    this.#fetch = makeFetch(config.caFile, process.cwd())
    this.#secret = config.clientSecretFile
      ? readFileSync(config.clientSecretFile, 'utf8').trim()
      : undefined
  }

  get issuer(): string {
    return this.#config.issuer
  }

  #discover(): Promise<Discovery> {
    this.#discovery ??= (async () => {
      const base = this.#config.issuer.replace(/\/+$/, '')
      const res = await this.#fetch(`${base}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(5000),
      })
      if (res.status !== 200) throw new Error(`issuer discovery answered HTTP ${res.status}`)
      const doc = (await res.json()) as Partial<Discovery> & { issuer?: string }
      if (doc.issuer !== this.#config.issuer)
        throw new Error(`discovery names issuer ${String(doc.issuer)}`)
      for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const)
        if (typeof doc[k] !== 'string' || !doc[k].startsWith('https://'))
          throw new Error(`discovery has no https ${k}`)
      return doc as Discovery
    })()
    this.#discovery.catch(() => (this.#discovery = undefined))
    return this.#discovery
  }

  /** The URL to send the browser to, and the sealed login cookie's value. */
  async start(redirectUri: string, next: string): Promise<{ url: string; cookie: string }> {
    const d = await this.#discover()
    const login: PendingLogin = {
      state: random(),
      verifier: random(),
      nonce: random(),
      next,
      exp: Date.now() + LOGIN_TTL_SECONDS * 1000,
    }
    const url = new URL(d.authorization_endpoint)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.#config.clientId,
      redirect_uri: redirectUri,
      scope: this.#config.scopes.join(' '),
      state: login.state,
      nonce: login.nonce,
      code_challenge: createHash('sha256').update(login.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString()
    return { url: url.toString(), cookie: this.#seal.seal(login) }
  }

  async #tokens(form: Record<string, string>): Promise<{ idToken: string; refresh?: string }> {
    const d = await this.#discover()
    const body = new URLSearchParams({
      ...form,
      client_id: this.#config.clientId,
      ...(this.#secret ? { client_secret: this.#secret } : {}),
    })
    const res = await this.#fetch(d.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: body.toString(),
      signal: AbortSignal.timeout(5000),
    } as Parameters<Fetch>[1])
    const tokens = (await res.json().catch(() => ({}))) as {
      id_token?: unknown
      refresh_token?: unknown
    }
    if (res.status !== 200 || typeof tokens.id_token !== 'string')
      throw new Error(`the token endpoint answered HTTP ${res.status}`)
    return {
      idToken: tokens.id_token,
      ...(typeof tokens.refresh_token === 'string' ? { refresh: tokens.refresh_token } : {}),
    }
  }

  async #verify(idToken: string): Promise<JWTPayload> {
    const d = await this.#discover()
    this.#jwks ??= createRemoteJWKSet(new URL(d.jwks_uri), {
      [customFetch]: (url, init) => this.#fetch(url, init),
    })
    const verify = (jwks: ReturnType<typeof createRemoteJWKSet>) =>
      jwtVerify(idToken, jwks, {
        issuer: this.#config.issuer,
        audience: this.#config.clientId,
        algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'],
      })
    try {
      return (await verify(this.#jwks)).payload
    } catch (e) {
      // A key the cached set lacks: the provider rotated (Dex does so on every start with
      // in-memory storage). jose refetches at most every 30 s, which is right for tokens an
      // attacker sends, but this one came from the provider's token endpoint over TLS: fetch
      // the key set again now, once, instead of failing every sign-in for up to 30 s.
      if (!(e instanceof errors.JWKSNoMatchingKey) || !this.#jwks.coolingDown) throw e
      await this.#jwks.reload()
      return (await verify(this.#jwks)).payload
    }
  }

  #identity(payload: JWTPayload): Identity {
    const c = this.#config
    const user = payload[c.usernameClaim]
    if (typeof user !== 'string' || !user)
      throw new Error(`the id_token has no ${c.usernameClaim} claim`)
    const groups = payload[c.groupsClaim]
    return {
      name: c.usernamePrefix + user,
      groups: Array.isArray(groups)
        ? groups.filter((g): g is string => typeof g === 'string').map((g) => c.groupsPrefix + g)
        : [],
      method: 'oidc',
      issuer: c.issuer,
      ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
      claims: payload,
      extra: {},
    }
  }

  /**
   * The callback: the state must be the one this browser started with (its sealed login
   * cookie, not expired), the code is exchanged with the PKCE verifier, the id_token verified
   * (issuer, audience, expiry, signature, nonce). Returns the approver's identity, where to go
   * next and the refresh token, if the provider gave one.
   */
  async finish(
    params: URLSearchParams,
    loginCookie: string | undefined,
    redirectUri: string,
  ): Promise<{ identity: Identity; next: string; refreshToken?: string }> {
    const p = this.#seal.open(loginCookie)
    const state = params.get('state') ?? ''
    if (!isPending(p) || p.exp < Date.now() || !sameToken(state, p.state))
      throw new Error('the login state does not match this browser (start again)')
    if (params.get('error'))
      throw new Error(`the identity provider refused (${errorCode(params.get('error'))})`)
    const tokens = await this.#tokens({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: p.verifier,
    })
    const payload = await this.#verify(tokens.idToken)
    if (typeof payload.nonce !== 'string' || !sameToken(payload.nonce, p.nonce))
      throw new Error('the id_token nonce does not match')
    return {
      identity: this.#identity(payload),
      next: p.next,
      ...(tokens.refresh ? { refreshToken: tokens.refresh } : {}),
    }
  }

  /**
   * The approver as the identity provider sees them now (groups re-read), from the session's
   * refresh token; throws when the provider no longer accepts it (removed, disabled).
   */
  async refresh(refreshToken: string): Promise<{ identity: Identity; refreshToken: string }> {
    const tokens = await this.#tokens({ grant_type: 'refresh_token', refresh_token: refreshToken })
    const identity = this.#identity(await this.#verify(tokens.idToken))
    return { identity, refreshToken: tokens.refresh ?? refreshToken }
  }
}
