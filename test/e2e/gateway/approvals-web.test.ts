// The approvals web page driven by a real headless Chromium (Debian's, through playwright-core):
// an approver signs in with OIDC (authorization code + PKCE against the harness issuer), finds
// the held `kubectl create clusterrolebinding` in the inbox, reads the details and approves; the
// kubectl command completes. The requester sees no approve button on its own request, and a POST
// without the page's CSRF token is refused. Screenshots of the inbox and the detail page are
// saved under test-artifacts/ for reviewers.
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium, type BrowserContext } from 'playwright-core'
import { kubectl } from '../../harness/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { useGatewayEnv } from './env.ts'
import {
  grantHumans,
  HUMANS,
  named,
  startApprovalGatehouse,
  waitForPending,
} from './approvals-support.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const ARTIFACTS = join(repoRoot, 'test-artifacts', 'approvals')
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

async function browser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(tempDir('gh-chromium-'), {
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    // the admin listener's certificate comes from Gatehouse's local CA, the issuer's from the harness
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
  })
}

describe('approvals web page (headless Chromium, OIDC login)', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  const contexts: BrowserContext[] = []

  before(async () => {
    const e = env()
    await grantHumans(e)
    mkdirSync(ARTIFACTS, { recursive: true })
    g = await startApprovalGatehouse(e, {
      approvals: {
        web: {
          oidc: {
            issuer: e.issuer.url,
            caFile: e.issuer.caFile,
            clientId: 'gatehouse-approvals',
            usernameClaim: 'preferred_username',
            usernamePrefix: 'human:',
            groupsClaim: 'groups',
          },
        },
      },
    })
  })
  after(async () => {
    for (const c of contexts) await c.close()
    await g?.stop()
  })

  async function signedIn(user: string): Promise<BrowserContext> {
    const c = await browser()
    contexts.push(c)
    env().issuer.setLoginUser({ sub: user, preferred_username: user, groups: ['approvers'] })
    const page = await c.newPage()
    await page.goto(`${g.server.admin!.url}/approvals`)
    assert.match(page.url(), /\/login\?next=%2Fapprovals$/)
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).click()
    await page.waitForURL(/\/approvals$/)
    assert.match(await page.locator('header').innerText(), new RegExp(`Signed in as human:${user}`))
    await page.close()
    return c
  }

  test('an approver signs in, reviews the held request and approves it; kubectl completes', async () => {
    const name = `e2e-appr-${RUN}-web`
    let done = false
    const held = kubectl(
      '1.35',
      ['create', 'clusterrolebinding', name, '--clusterrole=view', '--user=nobody'],
      { kubeconfig: g.kubeconfig({ token: HUMANS.bob, name: 'bob' }), timeoutMs: 90_000 },
    ).finally(() => (done = true))
    const pending = await waitForPending(g, named(name))
    const exchanges = env().issuer.codeExchanges

    const carol = await signedIn('carol')
    assert.equal(env().issuer.codeExchanges, exchanges + 1, 'one code exchange with PKCE')
    const page = await carol.newPage()
    await page.goto(`${g.server.admin!.url}/approvals`)
    const row = page
      .getByRole('row')
      .filter({ hasText: 'human:bob' })
      .filter({ hasText: 'clusterrolebindings' })
    assert.equal(await row.count(), 1)
    await page.screenshot({ path: join(ARTIFACTS, 'inbox.png'), fullPage: true })

    await row.getByRole('link').click()
    await page.waitForURL(new RegExp(`/approvals/${pending.id}$`))
    const main = await page.locator('main').innerText()
    assert.match(main, /human:bob/)
    assert.match(main, /cluster-admin-bindings/)
    assert.match(main, new RegExp(name), 'the body is shown')
    assert.match(main, /pending/)
    await page.screenshot({ path: join(ARTIFACTS, 'detail.png'), fullPage: true })
    assert.equal(done, false, 'kubectl is still held')

    await page.getByLabel(/Comment/).fill('reviewed in the browser')
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.waitForURL(new RegExp(`/approvals/${pending.id}$`))
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`${name} created`))
    await page.reload()
    const after = await page.locator('main').innerText()
    assert.match(after, /human:carol approved/)
    assert.match(after, /reviewed in the browser/)
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0)
    await page.screenshot({ path: join(ARTIFACTS, 'detail-approved.png'), fullPage: true })
    const stored = await g.server.approvals.get(pending.id)
    assert.equal(stored?.decisions[0]?.via, 'web-oidc')
  })

  test('the requester sees no approve button on its own request, and a POST without the CSRF token is refused', async () => {
    const name = `e2e-appr-${RUN}-web-own`
    const held = kubectl(
      '1.35',
      ['create', 'clusterrolebinding', name, '--clusterrole=view', '--user=nobody'],
      { kubeconfig: g.kubeconfig({ token: HUMANS.bob, name: 'bob' }), timeoutMs: 90_000 },
    )
    const pending = await waitForPending(g, named(name))
    const bob = await signedIn('bob')
    const page = await bob.newPage()
    await page.goto(`${g.server.admin!.url}/approvals/${pending.id}`)
    assert.match(await page.locator('main').innerText(), /separation of duties/)
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0)

    // a forged form post (no token, as another site would send it) changes nothing
    const forged = await bob.request.post(`${g.server.admin!.url}/approvals/${pending.id}/decide`, {
      form: { decision: 'deny', comment: 'forged' },
    })
    assert.equal(forged.status(), 403)
    const carol = await signedIn('carol')
    const cross = await carol.request.post(
      `${g.server.admin!.url}/approvals/${pending.id}/decide`,
      {
        form: { decision: 'approve', comment: 'cross-site', csrf: 'guess' },
        headers: { origin: 'https://evil.example' },
      },
    )
    assert.equal(cross.status(), 403)
    assert.equal((await g.server.approvals.get(pending.id))?.state, 'pending')

    // carol denies through the page; kubectl ends with Forbidden quoting the comment
    const p2 = await carol.newPage()
    await p2.goto(`${g.server.admin!.url}/approvals/${pending.id}`)
    await p2.getByLabel(/Comment/).fill('use a namespaced RoleBinding')
    await p2.getByRole('button', { name: 'Deny' }).click()
    const r = await held
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /denied by human:carol: "use a namespaced RoleBinding"/)
    await p2.goto(`${g.server.admin!.url}/approvals/history`)
    assert.match(await p2.locator('main').innerText(), /denied/)
  })

  test('the detail page of a 70 KB cluster-admin binding shows roleRef and subjects first', async () => {
    const name = `e2e-appr-${RUN}-big`
    const manifest = join(env().dir, `${name}.json`)
    writeFileSync(
      manifest,
      `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"${name}","annotations":{"padding":"${'x'.repeat(70 * 1024)}"}},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"system:authenticated"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}}`,
    )
    const held = kubectl('1.35', ['create', '-f', manifest], {
      kubeconfig: g.kubeconfig({ token: HUMANS.bob, name: 'bob' }),
      timeoutMs: 90_000,
    })
    const pending = await waitForPending(g, named(name))
    const carol = await signedIn('carol')
    const page = await carol.newPage()
    await page.goto(`${g.server.admin!.url}/approvals/${pending.id}`)
    const matters = page.getByRole('region', { name: 'What this request does' })
    const text = await matters.innerText()
    assert.match(text, /roleRef[\s\S]*"name": "cluster-admin"/)
    assert.match(text, /subjects[\s\S]*"name": "system:authenticated"/)
    // above the fold: the highlights come before the 70 KB body, which is whole but collapsed
    const box = await matters.boundingBox()
    assert.ok(box && box.y < 900, `the highlights start at y=${box?.y}`)
    const body = page.locator('details', { hasText: 'Body, application/json' })
    assert.equal(await body.getAttribute('open'), null, 'the long body starts collapsed')
    assert.ok(
      (await body.locator('pre').textContent())!.includes('x'.repeat(70 * 1024)),
      'and is whole',
    )
    await page.screenshot({ path: join(ARTIFACTS, 'detail-large-binding.png') })
    await page.getByLabel(/Comment/).fill('no cluster-admin for everyone')
    await page.getByRole('button', { name: 'Deny' }).click()
    assert.notEqual((await held).code, 0)
  })

  test('names with quotes and a bidi override render unambiguously in the inbox', async () => {
    const quoted = `ci-view-${RUN}" in namespace "sandbox`
    const rlo = `evil-${RUN}\u202egnp.exe`
    const bob = g.kubeconfig({ token: HUMANS.bob, name: 'bob' })
    const helds = [quoted, rlo].map((n) =>
      kubectl('1.35', ['create', 'clusterrolebinding', n, '--clusterrole=view', '--user=x'], {
        kubeconfig: bob,
        timeoutMs: 90_000,
      }),
    )
    const ids = [
      (await waitForPending(g, named(quoted))).id,
      (await waitForPending(g, named(rlo))).id,
    ]
    const carol = await signedIn('carol')
    const page = await carol.newPage()
    await page.goto(`${g.server.admin!.url}/approvals`)
    const inbox = await page.locator('main').innerText()
    assert.ok(!/[\u202a-\u202e\u2066-\u2069]/.test(inbox), 'no raw bidi control in the page text')
    assert.ok(inbox.includes(`cluster-wide named "ci-view-${RUN}\\" in namespace \\"sandbox"`))
    assert.ok(inbox.includes(`named "evil-${RUN}\\u202egnp.exe"`))
    // the literal is its own element, styled apart from Gatehouse's words
    const literal = page.locator('code.literal', { hasText: `ci-view-${RUN}` })
    assert.equal(await literal.count(), 1)
    await page.screenshot({ path: join(ARTIFACTS, 'inbox-names.png'), fullPage: true })
    for (const id of ids) {
      await page.goto(`${g.server.admin!.url}/approvals/${id}`)
      await page.getByLabel(/Comment/).fill('test names')
      await page.getByRole('button', { name: 'Deny' }).click()
      await page.waitForURL(new RegExp(`/approvals/${id}$`))
    }
    for (const h of helds) assert.notEqual((await h).code, 0)
  })

  test('a next of /%09/evil.test lands on the admin origin after a genuine sign-in', async () => {
    const c = await browser()
    contexts.push(c)
    env().issuer.setLoginUser({ sub: 'carol', preferred_username: 'carol', groups: ['approvers'] })
    const page = await c.newPage()
    const admin = new URL(g.server.admin!.url)
    await page.goto(`${admin.origin}/login?next=/%09/evil.test/x`)
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).click()
    await page.waitForURL((u) => u.pathname.startsWith('/approvals'))
    const landed = new URL(page.url())
    assert.equal(landed.origin, admin.origin)
    assert.equal(landed.pathname, '/approvals')
    // the link an attacker would send: straight to the login start
    await page.goto(`${admin.origin}/login/oidc?next=/%09/evil.test/x`)
    await page.waitForURL((u) => u.origin === admin.origin && u.pathname === '/approvals')
    // and the session ends on the server when signing out
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/login$/)
    await page.goto(`${admin.origin}/approvals`)
    assert.match(page.url(), /\/login\?next=/)
  })
})
