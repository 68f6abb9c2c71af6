// The approvers' web page on the admin listener:
//   GET  /approvals                 inbox: pending requests the signed-in person may decide on
//   GET  /approvals/history         decided, expired and used approvals
//   GET  /approvals/<id>            one request: requester, provenance, body, dry run, decisions
//   POST /approvals/<id>/decide     approve or deny with a comment (CSRF token, same origin)
//   GET  /login, /login/oidc, /oauth/callback, POST /login/dev, POST /logout
//   GET  /static/approvals.css
// Decisions go through the same ApprovalService.decide as the JSON API.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ApprovalsConfig } from '../config/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { ApprovalService } from '../approval/service.ts'
import { isNonHuman, mayDecide } from '../approval/decide.ts'
import type { Identity } from '../authn/index.ts'
import { visibleTo } from './approvals-api.ts'
import {
  cookie,
  cookies,
  LOGIN_COOKIE,
  OidcLogin,
  sameToken,
  SESSION_COOKIE,
  WebSessions,
  type WebSession,
} from './web-login.ts'
import { approvalTable, detailPage, layout, loginPage, STYLESHEET } from './web-pages.ts'

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
}

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

/** Only local paths: no open redirect through `next`. */
const localPath = (p: string | null): string =>
  p && /^\/[^/\\]/.test(p) && !p.startsWith('//') ? p : '/approvals'

export interface ApprovalsWeb {
  /** Handles the request when it is one of the web page's; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
}

export function createApprovalsWeb(deps: {
  config: ApprovalsConfig
  approvals: ApprovalService
  isAdmin: (who: Identity) => boolean
  logger: Logger
}): ApprovalsWeb {
  const web = deps.config.web
  const sessions = new WebSessions(web?.sessionTtlSeconds ?? 8 * 3600)
  const oidc = web?.oidc ? new OidcLogin(web.oidc) : undefined
  const devLogin = web?.insecureDevLogin === true
  if (devLogin)
    deps.logger.warn(
      'approvals.web.insecureDevLogin is on: anyone can sign in to the approvals page as anyone',
    )
  const origin = (req: IncomingMessage): string => `https://${req.headers.host ?? ''}`
  const redirectUri = (req: IncomingMessage): string => `${origin(req)}/oauth/callback`

  /** A POST must carry the session's CSRF token and, when the browser sends one, our Origin. */
  const csrfOk = (
    req: IncomingMessage,
    s: WebSession | undefined,
    form: URLSearchParams,
  ): boolean => {
    const o = req.headers.origin
    if (o !== undefined && o !== origin(req)) return false
    return s !== undefined && sameToken(form.get('csrf') ?? '', s.csrf)
  }

  const login = (res: ServerResponse, url: URL, error?: string): void =>
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
          next: localPath(url.searchParams.get('next')),
          ...(error ? { error } : {}),
        }),
      ),
    )

  const signIn = (
    res: ServerResponse,
    who: Identity,
    via: WebSession['via'],
    next: string,
  ): void => {
    const id = sessions.create(who, via)
    deps.logger.info({ identity: who.name, via }, 'approver signed in to the approvals page')
    redirect(res, next, {
      'set-cookie': [cookie(SESSION_COOKIE, id, sessions.ttlSeconds), cookie(LOGIN_COOKIE, '', 0)],
    })
  }

  const page = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    s: WebSession,
  ): Promise<void> => {
    const who = s.identity
    const visible = visibleTo(who, deps.isAdmin(who), deps.config)
    if (url.pathname === '/approvals') {
      const items = (await deps.approvals.list({ state: 'pending', limit: 500 })).filter(visible)
      return html(
        res,
        200,
        layout(
          'Pending requests',
          who,
          s.csrf,
          approvalTable(items, 'Requests waiting for a decision'),
        ),
      )
    }
    if (url.pathname === '/approvals/history') {
      const items = (await deps.approvals.list({ limit: 500 }))
        .filter((a) => a.state !== 'pending')
        .filter(visible)
      return html(
        res,
        200,
        layout('History', who, s.csrf, approvalTable(items, 'Decided, expired and used requests')),
      )
    }
    const m = /^\/approvals\/([0-9a-zA-Z-]+)(\/decide)?$/.exec(url.pathname)
    const a = m ? await deps.approvals.get(m[1]!) : undefined
    if (!m || !a || !visible(a))
      return html(res, 404, layout('Not found', who, s.csrf, '<p>No such approval.</p>'))
    let message = url.searchParams.get('error') ?? undefined
    if (m[2]) {
      if (req.method !== 'POST') return redirect(res, `/approvals/${a.id}`)
      const form = await readForm(req)
      if (!csrfOk(req, s, form))
        return html(
          res,
          403,
          layout(
            'Refused',
            who,
            s.csrf,
            '<p class="alert" role="alert">The form is stale or not from this page (CSRF check). Reload and try again.</p>',
          ),
        )
      const decision = form.get('decision')
      if (decision !== 'approve' && decision !== 'deny') return redirect(res, `/approvals/${a.id}`)
      const r = await deps.approvals.decide(a.id, {
        who,
        decision,
        comment: form.get('comment') ?? '',
        via: s.via,
      })
      if ('error' in r) message = r.message
      else return redirect(res, `/approvals/${a.id}`)
    }
    const current = (await deps.approvals.get(a.id)) ?? a
    const may = mayDecide(current, who, { breakGlass: deps.config.breakGlass })
    const why =
      current.requester.name === who.name
        ? 'You asked for this request; another approver must decide (separation of duties).'
        : isNonHuman(who, deps.config.nonHuman)
          ? 'Machine identities cannot approve.'
          : !may.approver && !may.breakGlass
            ? 'You are not an approver of this rule.'
            : current.decisions.some((d) => d.by === who.name)
              ? 'You have decided on this request already.'
              : undefined
    const canDecide = current.state === 'pending' && why === undefined
    return html(
      res,
      message ? 400 : 200,
      layout(
        current.request.summary,
        who,
        s.csrf,
        detailPage(current, {
          canDecide,
          csrf: s.csrf,
          ...(why ? { why } : {}),
          ...(message ? { message } : {}),
        }),
      ),
    )
  }

  return {
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
      if (p === '/login') {
        login(res, url)
        return true
      }
      if (p === '/login/oidc' && oidc) {
        const { url: to, state } = await oidc.start(
          redirectUri(req),
          localPath(url.searchParams.get('next')),
        )
        redirect(res, to, { 'set-cookie': cookie(LOGIN_COOKIE, state, 600) })
        return true
      }
      if (p === '/oauth/callback' && oidc) {
        try {
          const r = await oidc.finish(
            url.searchParams,
            cookies(req)[LOGIN_COOKIE],
            redirectUri(req),
          )
          signIn(res, r.identity, 'web-oidc', r.next)
        } catch (e) {
          deps.logger.warn({ error: String(e) }, 'approvals page login failed')
          login(res, url, `Sign-in failed: ${(e as Error).message}`)
        }
        return true
      }
      if (p === '/login/dev' && devLogin && req.method === 'POST') {
        const form = await readForm(req)
        const name = (form.get('name') ?? '').trim()
        if (!name) {
          login(res, url, 'Give a name')
          return true
        }
        const groups = (form.get('groups') ?? '')
          .split(',')
          .map((g) => g.trim())
          .filter(Boolean)
        signIn(
          res,
          { name, groups, method: 'static', claims: {}, extra: {} },
          'web-dev-login',
          localPath(form.get('next')),
        )
        return true
      }
      if (p === '/logout' && req.method === 'POST') {
        const form = await readForm(req)
        if (csrfOk(req, sessions.get(req), form)) sessions.end(req)
        redirect(res, '/login', { 'set-cookie': cookie(SESSION_COOKIE, '', 0) })
        return true
      }
      if (p !== '/approvals' && !p.startsWith('/approvals/')) return false
      const s = sessions.get(req)
      if (!s) {
        redirect(res, `/login?next=${encodeURIComponent(p)}`)
        return true
      }
      await page(req, res, url, s)
      return true
    },
  }
}
