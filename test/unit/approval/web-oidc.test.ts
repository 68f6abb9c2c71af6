// The approvals page's OIDC login against a real local issuer (HTTPS, PKCE S256): a login in
// flight keeps nothing in memory (20,000 unauthenticated starts leave the heap where it was), a
// forged `next` (`/%09/evil.test`, `//evil.test`) lands on the approvals page after a genuine
// login, a callback without the browser's sealed login cookie is refused, and the error text an
// identity provider sends back is not echoed into the page.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { after, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import { createApprovalsWeb, type ApprovalsWeb } from '../../../src/admin/web.ts'
import { ApprovalService } from '../../../src/approval/service.ts'
import { sqliteStores } from '../../../src/stores.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const dir = mkdtempSync(join(tmpdir(), 'gh-web-oidc-'))
const stores = sqliteStores(join(dir, 'audit.db'))
const store = stores.approvals
const approvals = new ApprovalService({
  store,
  audit: { write: () => undefined },
  logger: silentLogger(),
  config: { pollIntervalMs: 1000, maxPendingPerIdentity: 20 },
})

describe('approvals page OIDC login', () => {
  let issuer: OidcIssuer
  let server: Server
  let web: ApprovalsWeb
  let base: string
  let idp: Agent
  before(async () => {
    await stores.migrate()
    issuer = await startOidcIssuer({ dir })
    idp = new Agent({ connect: { ca: readFileSync(issuer.caFile) } })
    web = createApprovalsWeb({
      config: {
        pollIntervalMs: 1000,
        maxPendingPerIdentity: 20,
        web: {
          insecureDevLogin: false,
          sessionTtlSeconds: 600,
          oidc: {
            issuer: issuer.url,
            caFile: issuer.caFile,
            clientId: 'gatehouse-approvals',
            scopes: ['openid'],
            usernameClaim: 'preferred_username',
            usernamePrefix: 'human:',
            groupsClaim: 'groups',
            groupsPrefix: '',
          },
        },
      },
      approvals,
      isAdmin: () => false,
      logger: silentLogger(),
    })
    server = createServer((req, res) => {
      void web.handle(req, res, new URL(req.url ?? '/', 'https://admin')).then((handled) => {
        if (!handled) {
          res.writeHead(404)
          res.end()
        }
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.close()
    await idp.close()
    await issuer.close()
    await approvals.close()
    await stores.close()
  })

  /** Starts a login, lets the issuer log `user` in, and returns the callback's answer. */
  async function login(
    next: string,
    user = 'carol',
  ): Promise<{ status: number; location: string }> {
    issuer.setLoginUser({ sub: user, preferred_username: user, groups: ['approvers'] })
    const start = await request(`${base}/login/oidc?next=${encodeURIComponent(next)}`)
    await start.body.dump()
    assert.equal(start.statusCode, 303)
    const loginCookie = String(start.headers['set-cookie']).split(';')[0]!
    const authorize = await request(String(start.headers['location']), { dispatcher: idp })
    await authorize.body.dump()
    assert.equal(authorize.statusCode, 302)
    const back = new URL(String(authorize.headers['location']))
    const callback = await request(`${base}${back.pathname}${back.search}`, {
      headers: { cookie: loginCookie },
    })
    await callback.body.dump()
    return { status: callback.statusCode, location: String(callback.headers['location']) }
  }

  it('lands on the approvals pages of the admin origin whatever next says', async () => {
    assert.deepEqual(await login('/approvals/abc'), { status: 303, location: '/approvals/abc' })
    for (const next of ['/\t/evil.test/x', '//evil.test/x', '/\\evil.test', 'https://evil.test/'])
      assert.deepEqual(await login(next), { status: 303, location: '/approvals' }, next)
  })

  it("refuses a callback without this browser's login cookie, and echoes no provider text", async () => {
    const start = await request(`${base}/login/oidc`)
    await start.body.dump()
    const state = new URL(String(start.headers['location'])).searchParams.get('state')!
    const noCookie = await request(`${base}/oauth/callback?code=x&state=${state}`)
    assert.equal(noCookie.statusCode, 400)
    assert.match(await noCookie.body.text(), /does not match this browser/)
    const loginCookie = String(start.headers['set-cookie']).split(';')[0]!
    const hostile = await request(
      `${base}/oauth/callback?state=${state}&error=${encodeURIComponent('Call +1 555 0100 to unlock')}`,
      { headers: { cookie: loginCookie } },
    )
    assert.equal(hostile.statusCode, 400)
    const text = await hostile.body.text()
    assert.doesNotMatch(text, /555 0100/)
    assert.match(text, /the identity provider refused \(an error\)/)
  })

  it('keeps nothing in memory for logins in flight: 20,000 starts leave the heap flat', async () => {
    const warm = await request(`${base}/login/oidc`)
    await warm.body.dump()
    gc()
    const before = process.memoryUsage().heapUsed
    const agent = new Agent({ connections: 32 })
    let left = 20_000
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (left-- > 0) {
          const r = await request(`${base}/login/oidc?next=/approvals/${left}`, {
            dispatcher: agent,
          })
          await r.body.dump()
          assert.equal(r.statusCode, 303)
        }
      }),
    )
    await agent.close()
    gc()
    const grown = process.memoryUsage().heapUsed - before
    assert.ok(grown < 16 * 1024 * 1024, `the heap grew by ${(grown / 1048576).toFixed(1)} MiB`)
    assert.equal(web.sessions, 5, 'only signed-in sessions are held (one per login above)')
  })
})
