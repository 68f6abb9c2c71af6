// The approvers' login against a real identity provider: Dex (built from the Go module proxy)
// with static password users and a public static client. Headless Chromium signs in through
// Dex's own login form (authorization code + PKCE, offline_access for a refresh token), the
// approver approves a held `kubectl create clusterrolebinding` and kubectl completes; a Dex user
// outside the approvers' group cannot see it; and when Dex no longer honours the refresh token
// (restarted with its in-memory storage gone) a decision asks to sign in again and nothing is
// decided until the approver has. approvals-web.test.ts drives the harness issuer fixture.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { kubectl } from '../../harness/index.ts'
import { DEX_PASSWORD, reserveDex, startDex, type Dex, type DexUser } from '../../harness/dex.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { tempDir } from '../../harness/temp-dir.ts'
import { useGatewayEnv } from './env.ts'
import {
  grantHumans,
  HUMANS,
  named,
  startApprovalGatehouse,
  waitForPending,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CLIENT_ID = 'gatehouse-approvals'
const USERS: DexUser[] = [
  { email: 'carol@example.test', preferredUsername: 'carol', groups: ['approvers'] },
  { email: 'dave@example.test', preferredUsername: 'dave', groups: ['developers'] },
]

describe('approvals web page with Dex as the identity provider (headless Chromium)', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  let dex: Dex
  let startDexAgain: () => Promise<Dex>
  const contexts: BrowserContext[] = []

  before(
    async () => {
      const e = env()
      await grantHumans(e)
      const reserved = await reserveDex(e.dir)
      // Gatehouse discovers the issuer at the first sign-in, so it can start before Dex,
      // which needs Gatehouse's callback URL for its client
      g = await startApprovalGatehouse(e, {
        approvals: {
          web: {
            oidc: {
              issuer: reserved.issuer,
              caFile: reserved.caFile,
              clientId: CLIENT_ID,
              scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
              usernameClaim: 'preferred_username',
              usernamePrefix: 'human:',
              groupsClaim: 'groups',
            },
          },
        },
      })
      startDexAgain = () =>
        startDex({
          dir: e.dir,
          reserved,
          clientId: CLIENT_ID,
          redirectUris: [`${g.server.admin!.url}/oauth/callback`],
          users: USERS,
        })
      dex = await startDexAgain()
    },
    { timeout: 60 * 60_000 }, // builds Dex when the cache lacks it
  )
  after(async () => {
    for (const c of contexts) await c.close()
    await dex?.stop()
    await g?.stop()
  })

  async function browser(): Promise<BrowserContext> {
    const c = await chromium.launchPersistentContext(tempDir('gh-chromium-'), {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
      headless: true,
      // Gatehouse's admin certificate and Dex's come from test CAs
      ignoreHTTPSErrors: true,
    })
    contexts.push(c)
    return c
  }

  /** From the approvals page through Dex's login form and back. */
  async function signInAtDex(page: Page, email: string, password = DEX_PASSWORD): Promise<void> {
    await page.goto(`${g.server.admin!.url}/approvals`)
    if (new URL(page.url()).pathname === '/login')
      await page.getByRole('link', { name: 'Sign in with your identity provider' }).click()
    await page.waitForURL((u) => u.href.startsWith(dex.issuer))
    assert.equal(await page.getByRole('heading').innerText(), 'Log in to Your Account')
    await page.locator('#login').fill(email)
    await page.locator('#password').fill(password)
    await page.getByRole('button', { name: 'Login' }).click()
  }

  /** Back on the admin origin after Dex: the approvals inbox (or why not). */
  async function landed(page: Page): Promise<void> {
    await page.waitForURL(onAdmin)
    await page.waitForLoadState()
    const u = new URL(page.url())
    assert.equal(u.pathname, '/approvals', await page.locator('main').innerText())
  }

  const admin = (path: string): string => `${g.server.admin!.url}${path}`
  const onAdmin = (u: URL): boolean => u.origin === new URL(g.server.admin!.url).origin

  function hold(name: string) {
    return kubectl(
      '1.35',
      ['create', 'clusterrolebinding', name, '--clusterrole=view', '--user=nobody'],
      { kubeconfig: g.kubeconfig({ token: HUMANS.bob, name: 'bob' }), timeoutMs: 120_000 },
    )
  }

  test('an approver signs in on Dex (a wrong password is refused there) and approves; kubectl completes', async () => {
    const name = `e2e-dex-${RUN}-approve`
    const held = hold(name)
    const pending = await waitForPending(g, named(name))
    const page = await (await browser()).newPage()

    await signInAtDex(page, 'carol@example.test', 'not-the-password')
    assert.ok(page.url().startsWith(dex.issuer), 'a wrong password stays on Dex')
    assert.match(
      await page.locator('#login-error').innerText(),
      /Invalid Email Address and password/,
    )
    await page.locator('#login').fill('carol@example.test')
    await page.locator('#password').fill(DEX_PASSWORD)
    await page.getByRole('button', { name: 'Login' }).click()
    await landed(page)
    assert.match(await page.locator('header').innerText(), /Signed in as human:carol/)

    const row = page.getByRole('row').filter({ hasText: name.slice(0, 20) })
    assert.equal(await row.count(), 1, await page.locator('main').innerText())
    await row.getByRole('link').click()
    await page.waitForURL(new RegExp(`/approvals/${pending.id}$`))
    assert.match(await page.locator('main').innerText(), /human:bob/)
    // the decision re-reads carol's groups with Dex's refresh token first
    await page.getByLabel(/Comment/).fill('approved after a Dex sign-in')
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.waitForURL(new RegExp(`/approvals/${pending.id}$`))
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`${name} created`))
    const stored = await g.server.approvals.get(pending.id)
    assert.equal(stored?.state, 'used', 'approved, then used by the held request')
    assert.equal(stored?.decisions[0]?.by, 'human:carol')
    assert.equal(stored?.decisions[0]?.via, 'web-oidc')
  })

  test('a Dex user outside the approvers group signs in but neither sees nor can open the request', async () => {
    const name = `e2e-dex-${RUN}-dave`
    const held = hold(name)
    const pending = await waitForPending(g, named(name))
    const page = await (await browser()).newPage()
    await signInAtDex(page, 'dave@example.test')
    await landed(page)
    assert.match(await page.locator('header').innerText(), /Signed in as human:dave/)
    assert.doesNotMatch(await page.locator('main').innerText(), new RegExp(name))
    const detail = await page.goto(admin(`/approvals/${pending.id}`))
    assert.equal(detail?.status(), 404)
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0)
    assert.equal((await g.server.approvals.get(pending.id))?.state, 'pending')

    const carol = await (await browser()).newPage()
    await signInAtDex(carol, 'carol@example.test')
    await landed(carol)
    await carol.goto(admin(`/approvals/${pending.id}`))
    await carol.getByLabel(/Comment/).fill('not today')
    await carol.getByRole('button', { name: 'Deny' }).click()
    assert.notEqual((await held).code, 0)
  })

  test('after Dex lost the refresh token (restarted), a decision asks to sign in again and decides nothing until then', async () => {
    const name = `e2e-dex-${RUN}-restart`
    const held = hold(name)
    const pending = await waitForPending(g, named(name))
    const page = await (await browser()).newPage()
    await signInAtDex(page, 'carol@example.test')
    await landed(page)
    await page.goto(admin(`/approvals/${pending.id}`))

    await dex.stop()
    dex = await startDexAgain() // memory storage: the refresh tokens it issued are gone
    await page.getByLabel(/Comment/).fill('after the IdP restart')
    await page.getByRole('button', { name: 'Approve' }).click()
    assert.match(await page.locator('main').innerText(), /sign in again/)
    assert.equal((await g.server.approvals.get(pending.id))?.state, 'pending')

    await signInAtDex(page, 'carol@example.test')
    await landed(page)
    await page.goto(admin(`/approvals/${pending.id}`))
    await page.getByLabel(/Comment/).fill('after signing in again')
    await page.getByRole('button', { name: 'Approve' }).click()
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    const stored = await g.server.approvals.get(pending.id)
    assert.equal(stored?.decisions.length, 1)
    assert.equal(stored?.decisions[0]?.comment, 'after signing in again')
  })
})
