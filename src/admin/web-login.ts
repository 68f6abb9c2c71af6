// Who is at the approvals web page: an OIDC login (authorization code + PKCE S256, RFC 7636)
// against the approvers' identity provider, or, only when the configuration says so, a local
// development login. Sessions live in this process (a restart logs people out); the cookie holds
// only a random id: `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax (Lax, not Strict, so the
// redirect back from the identity provider still carries it; every POST also needs the session's
// CSRF token and a same-origin Origin header).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose'
import type { Identity } from '../authn/index.ts'
import { makeFetch, type Fetch } from '../authn/oidc.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import type { ApprovalDecision } from '../approval/record.ts'

type OidcLoginConfig = NonNullable<NonNullable<ApprovalsConfig['web']>['oidc']>

export const SESSION_COOKIE = '__Host-gatehouse_session'
export const LOGIN_COOKIE = '__Host-gatehouse_login'

export interface WebSession {
  identity: Identity
  csrf: string
  via: ApprovalDecision['via']
  expiresAt: number
}

const random = (): string => randomBytes(32).toString('base64url')

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

export class WebSessions {
  readonly #sessions = new Map<string, WebSession>()
  readonly #ttlMs: number
  constructor(ttlSeconds: number) {
    this.#ttlMs = ttlSeconds * 1000
  }
  get ttlSeconds(): number {
    return this.#ttlMs / 1000
  }
  create(identity: Identity, via: WebSession['via']): string {
    const id = random()
    for (const [k, s] of this.#sessions) if (s.expiresAt < Date.now()) this.#sessions.delete(k)
    this.#sessions.set(id, { identity, via, csrf: random(), expiresAt: Date.now() + this.#ttlMs })
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

/** One login in flight: what the callback must see again. */
interface PendingLogin {
  verifier: string
  nonce: string
  next: string
  at: number
}

export class OidcLogin {
  readonly #config: OidcLoginConfig
  readonly #fetch: Fetch
  readonly #secret: string | undefined
  readonly #pending = new Map<string, PendingLogin>()
  #discovery: Promise<Discovery> | undefined
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined

  constructor(config: OidcLoginConfig) {
    this.#config = config
    this.#fetch = makeFetch(config.caFile, process.cwd())
    this.#secret = config.clientSecretFile
      ? readFileSync(config.clientSecretFile, 'utf8').trim()
      : undefined
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

  /** The URL to send the browser to, and the state for the login cookie. */
  async start(redirectUri: string, next: string): Promise<{ url: string; state: string }> {
    const d = await this.#discover()
    const state = random()
    const verifier = random()
    const nonce = random()
    for (const [k, p] of this.#pending) if (Date.now() - p.at > 600_000) this.#pending.delete(k)
    this.#pending.set(state, { verifier, nonce, next, at: Date.now() })
    const url = new URL(d.authorization_endpoint)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.#config.clientId,
      redirect_uri: redirectUri,
      scope: this.#config.scopes.join(' '),
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString()
    return { url: url.toString(), state }
  }

  /**
   * The callback: the state must be the one this browser started with (its login cookie), the
   * code is exchanged with the PKCE verifier, the id_token verified (issuer, audience, expiry,
   * signature, nonce). Returns the approver's identity and where to go next.
   */
  async finish(
    params: URLSearchParams,
    cookieState: string | undefined,
    redirectUri: string,
  ): Promise<{ identity: Identity; next: string }> {
    const state = params.get('state') ?? ''
    const p = this.#pending.get(state)
    this.#pending.delete(state)
    if (!p || !cookieState || !sameToken(state, cookieState))
      throw new Error('the login state does not match this browser (start again)')
    if (params.get('error'))
      throw new Error(`the identity provider refused: ${params.get('error')}`)
    const d = await this.#discover()
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: redirectUri,
      client_id: this.#config.clientId,
      code_verifier: p.verifier,
      ...(this.#secret ? { client_secret: this.#secret } : {}),
    })
    const res = await this.#fetch(d.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: body.toString(),
      signal: AbortSignal.timeout(5000),
    } as Parameters<Fetch>[1])
    const tokens = (await res.json()) as { id_token?: unknown }
    if (res.status !== 200 || typeof tokens.id_token !== 'string')
      throw new Error(`the token endpoint answered HTTP ${res.status}`)
    this.#jwks ??= createRemoteJWKSet(new URL(d.jwks_uri), {
      [customFetch]: (url, init) => this.#fetch(url, init),
    })
    const { payload } = await jwtVerify(tokens.id_token, this.#jwks, {
      issuer: this.#config.issuer,
      audience: this.#config.clientId,
      algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'],
    })
    if (typeof payload.nonce !== 'string' || !sameToken(payload.nonce, p.nonce))
      throw new Error('the id_token nonce does not match')
    const c = this.#config
    const user = payload[c.usernameClaim]
    if (typeof user !== 'string' || !user)
      throw new Error(`the id_token has no ${c.usernameClaim} claim`)
    const groups = payload[c.groupsClaim]
    return {
      identity: {
        name: c.usernamePrefix + user,
        groups: Array.isArray(groups)
          ? groups.filter((g): g is string => typeof g === 'string').map((g) => c.groupsPrefix + g)
          : [],
        method: 'oidc',
        issuer: c.issuer,
        ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
        claims: payload,
        extra: {},
      },
      next: p.next,
    }
  }
}
