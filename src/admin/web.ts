// The approvers' web page on the admin listener:
//   GET  /approvals[?page=N]        inbox: pending requests the signed-in person may see
//   GET  /approvals/history[?page=N] decided, expired and used approvals
//   GET  /approvals/<id>            one request: highlights, binding, body, dry run, decisions
//   POST /approvals/<id>/decide     approve or deny with a comment (CSRF token, same origin)
//   GET  /login, /login/oidc, /oauth/callback, POST /login/dev, POST /logout
//   GET  /static/approvals.css
// Decisions go through the same ApprovalService.decide as the JSON API. Inbox and history are
// queried in the store by state and approver set, a page at a time with a count.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ApprovalsConfig } from '../config/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { ApprovalService } from '../approval/service.ts'
import { whyNot } from '../approval/decide.ts'
import type { Identity } from '../authn/index.ts'
import { visibleTo } from './approvals-api.ts'
import {
  cookie,
  cookies,
  LOGIN_COOKIE,
  LOGIN_CSRF_COOKIE,
  LOGIN_TTL_SECONDS,
  OidcLogin,
  random,
  sameToken,
  SESSION_COOKIE,
  WebSessions,
  type WebSession,
} from './web-login.ts'
import { detailPage } from './web-detail.ts'
import {
  approvalTable,
  esc,
  layout,
  loginPage,
  pager,
  STYLESHEET,
  summaryHtml,
} from './web-pages.ts'

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
}

/** Approvals per page of the inbox and the history. */
export const PAGE_SIZE = 50

function html(
  res: ServerResponse,
  code: number,
  body: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(code, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  })
  res.end(body)
}

function redirect(
  res: ServerResponse,
  location: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, ...headers })
  res.end()
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length
    if (n > 16 * 1024) throw new Error('form too large')
    chunks.push(c)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

/** Any origin will do as long as it is fixed: only whether `next` stays on it matters. */
const BASE = 'https://gatehouse.invalid'

/**
 * Where to go after signing in: `next` resolved as a URL against the admin origin, exactly as a
 * browser would (so `/%09/evil.test`, `/\evil.test` and `//evil.test` leave it and are
 * refused), and only to the approvals pages; serialised, so no control character survives.
 */
export function localNext(next: string | null): string {
  if (!next) return '/approvals'
  let u: URL
  try {
    u = new URL(next, BASE)
  } catch {
    return '/approvals'
  }
  if (u.origin !== BASE) return '/approvals'
  if (u.pathname !== '/approvals' && !u.pathname.startsWith('/approvals/')) return '/approvals'
  return u.pathname + u.search
}

const pageNumber = (url: URL): number => {
  const n = Number(url.searchParams.get('page') ?? '1')
  return Number.isInteger(n) && n >= 1 && n <= 100_000 ? n : 1
}

const refused = (who: Identity | undefined, csrf: string | undefined): string =>
  layout(
    'Refused',
    who,
    csrf,
    '<p class="alert" role="alert">The form is stale or not from this page (CSRF check). Reload and try again.</p>',
  )

const signInAgain = (message: string, id: string): string =>
  layout(
    'Sign in again',
    undefined,
    undefined,
    `<p class="alert" role="alert">${esc(message)}</p><p><a href="/login?next=${encodeURIComponent(`/approvals/${id}`)}">Sign in</a></p>`,
  )

export interface ApprovalsWeb {
  /** Handles the request when it is one of the web page's; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
  /** Signed-in sessions held (bounded; a login in flight holds none). */
  readonly sessions: number
}

export function createApprovalsWeb(deps: {
  config: ApprovalsConfig
  approvals: ApprovalService
  isAdmin: (who: Identity) => boolean
  logger: Logger
}): ApprovalsWeb {
  const web = deps.config.web
  const sessions = new WebSessions(web?.sessionTtlSeconds ?? 3600)
  const oidc = web?.oidc ? new OidcLogin(web.oidc) : undefined
  const devLogin = web?.insecureDevLogin === true
  if (devLogin)
    deps.logger.warn(
      'approvals.web.insecureDevLogin is on: anyone can sign in to the approvals page as anyone',
    )
  const origin = (req: IncomingMessage): string => `https://${req.headers.host ?? ''}`
  const redirectUri = (req: IncomingMessage): string => `${origin(req)}/oauth/callback`
  const sameOrigin = (req: IncomingMessage): boolean =>
    req.headers.origin === undefined || req.headers.origin === origin(req)

  /** A POST must carry the expected CSRF token and, when the browser sends one, our Origin. */
  const csrfOk = (req: IncomingMessage, expected: string | undefined, form: URLSearchParams) =>
    sameOrigin(req) && expected !== undefined && sameToken(form.get('csrf') ?? '', expected)

  const login = (res: ServerResponse, next: string | null, error?: string): void => {
    const token = random()
    html(
      res,
      error ? 400 : 200,
      layout(
        'Sign in',
        undefined,
        undefined,
        loginPage({
          oidc: !!oidc,
          devLogin,
          next: localNext(next),
          csrf: token,
          ...(error ? { error } : {}),
        }),
      ),
      { 'set-cookie': cookie(LOGIN_CSRF_COOKIE, token, LOGIN_TTL_SECONDS) },
    )
  }

  /** A new session; the one this browser had (if any) ends: no fixation, no stale second login. */
  const signIn = (
    req: IncomingMessage,
    res: ServerResponse,
    who: Identity,
    via: WebSession['via'],
    next: string,
    refreshToken?: string,
  ): void => {
    sessions.end(req)
    const id = sessions.create(who, via, refreshToken)
    deps.logger.info({ identity: who.name, via }, 'approver signed in to the approvals page')
    redirect(res, localNext(next), {
      'set-cookie': [
        cookie(SESSION_COOKIE, id, sessions.ttlSeconds),
        cookie(LOGIN_COOKIE, '', 0),
        cookie(LOGIN_CSRF_COOKIE, '', 0),
      ],
    })
  }

  /** Before a decision: the approver's groups as the identity provider has them now. */
  const recheck = async (s: WebSession): Promise<string | undefined> => {
    if (!oidc || !s.refreshToken) return undefined
    try {
      const r = await oidc.refresh(s.refreshToken)
      if (r.identity.name !== s.identity.name)
        return 'The identity provider names someone else now; sign in again.'
      s.identity = r.identity
      s.refreshToken = r.refreshToken
      return undefined
    } catch (e) {
      deps.logger.warn(
        { identity: s.identity.name, error: String(e) },
        'approver groups not re-read',
      )
      s.expiresAt = 0
      return 'Your sign-in is no longer accepted by the identity provider (your groups could not be re-read); sign in again.'
    }
  }

  const list = async (res: ServerResponse, url: URL, s: WebSession, history: boolean) => {
    const who = s.identity
    const page = pageNumber(url)
    const r = await deps.approvals.page(who, deps.isAdmin(who), {
      ...(history ? { decided: true } : { state: 'pending' }),
      limit: PAGE_SIZE,
      offset: (page - 1) * PAGE_SIZE,
    })
    const caption = history
      ? 'Decided, expired and used requests'
      : 'Requests waiting for a decision'
    const path = history ? '/approvals/history' : '/approvals'
    html(
      res,
      200,
      layout(
        history ? 'History' : 'Pending requests',
        who,
        s.csrf,
        approvalTable(r.items, caption, r.total) + pager(path, page, PAGE_SIZE, r.total),
      ),
    )
  }

  const detail = async (
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    decide: boolean,
    s: WebSession,
  ): Promise<void> => {
    const who = s.identity
    const visible = visibleTo(who, deps.isAdmin(who), deps.config)
    const a = await deps.approvals.get(id)
    if (!a || !visible(a))
      return html(res, 404, layout('Not found', who, s.csrf, '<p>No such approval.</p>'))
    let message: string | undefined
    if (decide) {
      if (req.method !== 'POST') return redirect(res, `/approvals/${a.id}`)
      const form = await readForm(req)
      if (!csrfOk(req, s.csrf, form)) return html(res, 403, refused(who, s.csrf))
      const decision = form.get('decision')
      if (decision !== 'approve' && decision !== 'deny') return redirect(res, `/approvals/${a.id}`)
      message = await recheck(s)
      if (message) return html(res, 403, signInAgain(message, a.id))
      const r = await deps.approvals.decide(a.id, {
        who: s.identity,
        decision,
        comment: form.get('comment') ?? '',
        via: s.via,
      })
      if (!('error' in r)) return redirect(res, `/approvals/${a.id}`)
      message = r.message
    }
    const current = (await deps.approvals.get(a.id)) ?? a
    const why = whyNot(current, s.identity, s.via, deps.approvals.policy)
    html(
      res,
      message ? 400 : 200,
      layout(
        current.request.summary,
        who,
        s.csrf,
        detailPage(current, {
          canDecide: why === undefined,
          csrf: s.csrf,
          ...(why && current.state === 'pending' ? { why: why.message } : {}),
          ...(message ? { message } : {}),
        }),
        summaryHtml(current),
      ),
    )
  }

  const loginRoutes = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
  ): Promise<boolean> => {
    const p = url.pathname
    if (p === '/login') {
      login(res, url.searchParams.get('next'))
      return true
    }
    if (p === '/login/oidc' && oidc) {
      const start = await oidc.start(redirectUri(req), localNext(url.searchParams.get('next')))
      redirect(res, start.url, {
        'set-cookie': cookie(LOGIN_COOKIE, start.cookie, LOGIN_TTL_SECONDS),
      })
      return true
    }
    if (p === '/oauth/callback' && oidc) {
      try {
        const r = await oidc.finish(url.searchParams, cookies(req)[LOGIN_COOKIE], redirectUri(req))
        signIn(req, res, r.identity, 'web-oidc', r.next, r.refreshToken)
      } catch (e) {
        deps.logger.warn({ error: String(e) }, 'approvals page login failed')
        login(res, null, `Sign-in failed: ${(e as Error).message}`)
      }
      return true
    }
    if (p === '/login/dev' && devLogin && req.method === 'POST') {
      const form = await readForm(req)
      if (!csrfOk(req, cookies(req)[LOGIN_CSRF_COOKIE], form)) {
        html(res, 403, refused(undefined, undefined))
        return true
      }
      const name = (form.get('name') ?? '').trim()
      if (!name) {
        login(res, form.get('next'), 'Give a name')
        return true
      }
      const groups = (form.get('groups') ?? '')
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean)
      const who: Identity = { name, groups, method: 'static', claims: {}, extra: {} }
      signIn(req, res, who, 'web-dev-login', form.get('next') ?? '')
      return true
    }
    if (p === '/logout' && req.method === 'POST') {
      const s = sessions.get(req)
      const form = await readForm(req)
      if (!csrfOk(req, s?.csrf, form)) {
        html(res, 403, refused(s?.identity, s?.csrf))
        return true
      }
      sessions.end(req)
      redirect(res, '/login', { 'set-cookie': cookie(SESSION_COOKIE, '', 0) })
      return true
    }
    return false
  }

  return {
    get sessions() {
      return sessions.size
    },
    async handle(req, res, url) {
      const p = url.pathname
      if (p === '/static/approvals.css') {
        res.writeHead(200, {
          'content-type': 'text/css; charset=utf-8',
          'cache-control': 'max-age=300',
          'x-content-type-options': 'nosniff',
        })
        res.end(STYLESHEET)
        return true
      }
      if (await loginRoutes(req, res, url)) return true
      if (p !== '/approvals' && !p.startsWith('/approvals/')) return false
      const s = sessions.get(req)
      if (!s) {
        redirect(res, `/login?next=${encodeURIComponent(p)}`)
        return true
      }
      if (p === '/approvals' || p === '/approvals/history')
        await list(res, url, s, p === '/approvals/history')
      else {
        const m = /^\/approvals\/([0-9a-zA-Z-]{1,64})(\/decide)?$/.exec(p)
        if (m) await detail(req, res, m[1]!, m[2] !== undefined, s)
        else html(res, 404, layout('Not found', s.identity, s.csrf, '<p>No such approval.</p>'))
      }
      return true
    },
  }
}
