// The approvals web page without a browser: the development login only when configured, the
// session cookie's attributes, pages only for signed-in people, escaping, the CSRF token and
// Origin check on decisions, and no open redirect through `next`.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { request } from 'undici'
import { createApprovalsWeb } from '../../../src/admin/web.ts'
import { ApprovalService } from '../../../src/approval/service.ts'
import { openSqliteStore } from '../../../src/audit/index.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { pendingApproval } from './records.ts'

const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'gh-appr-web-')), 'audit.db'))
const approvals = new ApprovalService({
  store,
  audit: { write: () => undefined },
  logger: silentLogger(),
  config: { pollIntervalMs: 1000 },
})

async function serve(devLogin: boolean): Promise<{ url: string; server: Server }> {
  const web = createApprovalsWeb({
    config: { pollIntervalMs: 1000, web: { insecureDevLogin: devLogin, sessionTtlSeconds: 600 } },
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
    await store.migrate()
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
    await store.close()
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

  it('signs in with a Secure HttpOnly SameSite __Host- cookie, escapes values, and checks CSRF', async () => {
    const login = await call(`${dev.url}/login/dev`, {
      method: 'POST',
      form: { name: 'human:alice', groups: 'sre', next: '//evil.example/x' },
    })
    assert.equal(login.status, 303)
    assert.equal(login.headers['location'], '/approvals', 'no open redirect')
    const setCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? [])
    const session = setCookie.find((c) => c.startsWith('__Host-gatehouse_session='))!
    assert.match(session, /; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/)
    const cookie = session.split(';')[0]!

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
})
