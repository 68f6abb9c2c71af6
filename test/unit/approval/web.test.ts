// The approvals web page without a browser: the development login only when configured, the
// session cookie's attributes, pages only for signed-in people, escaping, the CSRF token and
// Origin check on decisions and on logins and logouts, logout and re-login ending the server-side
// session, no attacker text in genuine pages, and no open redirect through `next`.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { request } from 'undici'
import { createApprovalsWeb, localNext } from '../../../src/admin/web.ts'
import { ApprovalService } from '../../../src/approval/service.ts'
import { sqliteStores } from '../../../src/stores.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { pendingApproval } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const stores = sqliteStores(join(tempDir('gh-appr-web-'), 'audit.db'))
const store = stores.approvals
const approvals = new ApprovalService({
  store,
  audit: { write: () => undefined },
  logger: silentLogger(),
  config: { pollIntervalMs: 1000, maxPendingPerIdentity: 20 },
})

async function serve(devLogin: boolean): Promise<{ url: string; server: Server }> {
  const web = createApprovalsWeb({
    config: {
      pollIntervalMs: 1000,
      maxPendingPerIdentity: 20,
      web: { insecureDevLogin: devLogin, sessionTtlSeconds: 600 },
    },
    approvals,
    isAdmin: () => false,
    logger: silentLogger(),
  })
  const server = createServer((req, res) => {
    void web.handle(req, res, new URL(req.url ?? '/', 'https://admin')).then((handled) => {
      if (!handled) {
        res.writeHead(404)
        res.end()
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

async function call(
  url: string,
  opts: {
    method?: 'GET' | 'POST'
    cookie?: string
    form?: Record<string, string>
    origin?: string
  } = {},
): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}> {
  const res = await request(url, {
    method: opts.method ?? 'GET',
    headers: {
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
      ...(opts.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...(opts.origin ? { origin: opts.origin } : {}),
    },
    ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}),
  })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

describe('approvals web page', () => {
  let dev: { url: string; server: Server }
  let closed: { url: string; server: Server }
  const id = '00000000-0000-4000-8000-0000000000aa'
  before(async () => {
    await stores.migrate()
    await store.insertApproval(
      pendingApproval({
        id,
        justification: '<script>alert(1)</script>',
        expiresAt: new Date(Date.now() + 600_000).toISOString(),
      }),
    )
    dev = await serve(true)
    closed = await serve(false)
  })
  after(async () => {
    dev.server.close()
    closed.server.close()
    await approvals.close()
    await stores.close()
  })

  it('sends people who are not signed in to the login page', async () => {
    const r = await call(`${dev.url}/approvals/${id}`)
    assert.equal(r.status, 303)
    assert.equal(r.headers['location'], `/login?next=${encodeURIComponent(`/approvals/${id}`)}`)
  })

  it('offers the development login only when configured', async () => {
    const page = await call(`${dev.url}/login`)
    assert.match(page.text, /Development login is enabled/)
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/)
    const none = await call(`${closed.url}/login/dev`, { method: 'POST', form: { name: 'x' } })
    assert.equal(none.status, 404)
    assert.doesNotMatch((await call(`${closed.url}/login`)).text, /Development login/)
  })

  /** GET /login, then the development login form posted with its CSRF token. */
  async function devLogin(
    name: string,
    groups = 'sre',
    next = '/approvals',
    cookie = '',
  ): Promise<{ status: number; location: unknown; cookie: string; setCookie: string[] }> {
    const page = await call(`${dev.url}/login`)
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!
    const loginCookie = ([] as string[])
      .concat(page.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('__Host-gatehouse_login_csrf='))!
      .split(';')[0]!
    const r = await call(`${dev.url}/login/dev`, {
      method: 'POST',
      cookie: [loginCookie, cookie].filter(Boolean).join('; '),
      form: { name, groups, next, csrf },
    })
    const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? [])
    const session = setCookie.find((c) => c.startsWith('__Host-gatehouse_session=')) ?? ''
    return {
      status: r.status,
      location: r.headers['location'],
      cookie: session.split(';')[0]!,
      setCookie,
    }
  }

  it('signs in with a Secure HttpOnly SameSite __Host- cookie, escapes values, and checks CSRF', async () => {
    const login = await devLogin('human:alice', 'sre', '//evil.example/x')
    assert.equal(login.status, 303)
    assert.equal(login.location, '/approvals', 'no open redirect')
    const session = login.setCookie.find((c) => c.startsWith('__Host-gatehouse_session='))!
    assert.match(session, /; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/)
    const cookie = login.cookie

    const inbox = await call(`${dev.url}/approvals`, { cookie })
    assert.equal(inbox.status, 200)
    assert.match(inbox.text, new RegExp(`href="/approvals/${id}"`))
    const detail = await call(`${dev.url}/approvals/${id}`, { cookie })
    assert.doesNotMatch(detail.text, /<script>alert/)
    assert.match(detail.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
    const csrf = /name="csrf" value="([^"]+)"/.exec(detail.text)![1]!

    const noToken = await call(`${dev.url}/approvals/${id}/decide`, {
      method: 'POST',
      cookie,
      form: { decision: 'approve' },
    })
    assert.equal(noToken.status, 403)
    const crossOrigin = await call(`${dev.url}/approvals/${id}/decide`, {
      method: 'POST',
      cookie,
      origin: 'https://evil.example',
      form: { decision: 'approve', csrf },
    })
    assert.equal(crossOrigin.status, 403)
    assert.equal((await approvals.get(id))?.state, 'pending')

    const ok = await call(`${dev.url}/approvals/${id}/decide`, {
      method: 'POST',
      cookie,
      form: { decision: 'approve', csrf, comment: 'fine' },
    })
    assert.equal(ok.status, 303)
    const a = await approvals.get(id)
    assert.equal(a?.state, 'approved')
    assert.equal(a?.decisions[0]?.via, 'web-dev-login')
    assert.equal(a?.decisions[0]?.by, 'human:alice')
  })

  it('refuses a development login without its CSRF token or from another origin', async () => {
    const forged = await call(`${dev.url}/login/dev`, {
      method: 'POST',
      form: { name: 'human:attacker', groups: 'sre' },
    })
    assert.equal(forged.status, 403)
    assert.equal(forged.headers['set-cookie'], undefined, 'no session cookie')
    const page = await call(`${dev.url}/login`)
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!
    const cookie = String(page.headers['set-cookie']).split(';')[0]!
    const cross = await call(`${dev.url}/login/dev`, {
      method: 'POST',
      cookie,
      origin: 'https://evil.example',
      form: { name: 'human:attacker', csrf },
    })
    assert.equal(cross.status, 403)
  })

  it('ends the server-side session on logout (with the token only) and on signing in again', async () => {
    const first = await devLogin('human:carol')
    const detail = await call(`${dev.url}/approvals`, { cookie: first.cookie })
    const csrf = /name="csrf" value="([^"]+)"/.exec(detail.text)![1]!
    const forged = await call(`${dev.url}/logout`, {
      method: 'POST',
      cookie: first.cookie,
      form: {},
    })
    assert.equal(forged.status, 403, 'a forged logout is refused')
    assert.equal(forged.headers['set-cookie'], undefined, 'and clears nothing')
    assert.equal((await call(`${dev.url}/approvals`, { cookie: first.cookie })).status, 200)
    const out = await call(`${dev.url}/logout`, {
      method: 'POST',
      cookie: first.cookie,
      form: { csrf },
    })
    assert.equal(out.status, 303)
    assert.equal(
      (await call(`${dev.url}/approvals`, { cookie: first.cookie })).status,
      303,
      'the old cookie no longer opens the page',
    )

    const a = await devLogin('human:carol')
    const b = await devLogin('human:carol', 'sre', '/approvals', a.cookie)
    assert.notEqual(a.cookie, b.cookie)
    assert.equal((await call(`${dev.url}/approvals`, { cookie: a.cookie })).status, 303)
    assert.equal((await call(`${dev.url}/approvals`, { cookie: b.cookie })).status, 200)
  })

  it('shows no text from the query string in a genuine page', async () => {
    const { cookie } = await devLogin('human:alice')
    const r = await call(
      `${dev.url}/approvals/${id}?error=${encodeURIComponent('Call +1 555 0100 now')}`,
      {
        cookie,
      },
    )
    assert.equal(r.status, 200)
    assert.doesNotMatch(r.text, /555 0100/)
  })

  it("answers 404 for another identity's approval it cannot see, for GET and POST alike", async () => {
    const hidden = '00000000-0000-4000-8000-0000000000bb'
    await store.insertApproval(
      pendingApproval({
        id: hidden,
        settings: { ...pendingApproval().settings, approvers: [{ group: 'db' }] },
        expiresAt: new Date(Date.now() + 600_000).toISOString(),
      }),
    )
    const { cookie } = await devLogin('human:eve', 'dev')
    const page = await call(`${dev.url}/approvals`, { cookie })
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!
    assert.equal((await call(`${dev.url}/approvals/${hidden}`, { cookie })).status, 404)
    const post = await call(`${dev.url}/approvals/${hidden}/decide`, {
      method: 'POST',
      cookie,
      form: { decision: 'approve', csrf },
    })
    assert.equal(post.status, 404)
    assert.doesNotMatch(post.text, /pending|not an approver/)
  })
})

describe('where a login returns to', () => {
  it('stays on the admin origin and on the approvals pages, however next is spelt', () => {
    const cases: [string | null, string][] = [
      [null, '/approvals'],
      ['/approvals/123', '/approvals/123'],
      ['/approvals/history?page=2', '/approvals/history?page=2'],
      ['/\t/evil.test/x', '/approvals'],
      ['/%09/evil.test/x', '/approvals'],
      ['//evil.test', '/approvals'],
      ['/\\evil.test', '/approvals'],
      ['\\\\evil.test', '/approvals'],
      ['https://evil.test/approvals', '/approvals'],
      ['javascript:alert(1)', '/approvals'],
      ['/approvals/../../admin', '/approvals'],
      ['/approvals\r\nSet-Cookie: x=1', '/approvals'],
      ['/approvals/\n/x', '/approvals//x'],
    ]
    for (const [next, expected] of cases) assert.equal(localNext(next), expected, String(next))
  })
})
