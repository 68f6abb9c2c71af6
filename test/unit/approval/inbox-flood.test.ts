// Issue 17 (inbox cap): listings come from the store by state and approver set, never "the
// newest 500, then filtered". On SQLite and PostgreSQL, with 600 newer pending approvals of one
// requester (inserted directly in the store, past any per-identity limit) and 520 decided ones:
// an older pending approval of another requester stays in its approvers' inbox, in the count
// and on the page that paging reaches, through ApprovalService.page, the web inbox and the JSON
// API; the history pages through every decided approval.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { request } from 'undici'
import { handleApprovalsApi } from '../../../src/admin/approvals-api.ts'
import { createApprovalsWeb, PAGE_SIZE } from '../../../src/admin/web.ts'
import type { ApprovalRecord } from '../../../src/approval/record.ts'
import { ApprovalService } from '../../../src/approval/service.ts'
import { postgresStores, sqliteStores, type Stores } from '../../../src/stores.ts'
import type { Identity } from '../../../src/authn/index.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { pendingApproval } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const schema = `gh_test_inbox_${process.pid}_${Date.now()}`
const stores: [string, () => Stores][] = [
  ['sqlite', () => sqliteStores(join(tempDir('gh-inbox-'), 'audit.db'))],
  ['postgres', () => postgresStores({ connectionString: PG_URL, schema })],
]

after(async () => {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
})

const FLOOD = 600
const DECIDED = 520
const DECIDED_STATES = ['approved', 'denied', 'expired', 'used'] as const
const T0 = Date.now() - 3600_000
const config = { pollIntervalMs: 60_000, maxPendingPerIdentity: 20 }

const person = (name: string, groups: string[]): Identity => ({
  name,
  groups,
  method: 'static',
  claims: {},
  extra: {},
})
/** May decide on the flood and on dave's request: the old one is behind 600 newer ones. */
const erin = person('human:erin', ['db', 'app'])
/** May decide on dave's request only. */
const olga = person('human:olga', ['db'])

const hex = (kind: string, i: number): string =>
  Buffer.from(`${kind}-${i}`).toString('hex').padEnd(64, '0').slice(0, 64)

function record(
  id: string,
  more: Partial<ApprovalRecord> & { at: number; by: string; group: string },
): ApprovalRecord {
  const { at, by, group, ...rest } = more
  const base = pendingApproval()
  return {
    ...base,
    id,
    requestId: `req-${id}`,
    binding: hex(id, at),
    createdAt: new Date(at).toISOString(),
    expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString(),
    requester: { ...base.requester, name: by },
    settings: { ...base.settings, approvers: [{ group }] },
    ...rest,
  }
}

for (const [kind, open] of stores) {
  describe(`inbox and history past 500 approvals (${kind} store)`, () => {
    const all = open()
    const store = all.approvals
    const approvals = new ApprovalService({
      store,
      audit: { write: () => undefined },
      logger: silentLogger(),
      config,
    })
    const old = `${kind}-old-dave`
    const floodIds = new Set<string>()
    const decidedIds = new Set<string>()
    let server: Server
    let base: string
    let who: Identity = erin

    before(async () => {
      await all.migrate()
      await store.insertApproval(record(old, { at: T0, by: 'human:dave', group: 'db' }))
      const rows: ApprovalRecord[] = []
      for (let i = 0; i < FLOOD; i++) {
        const id = `${kind}-flood-${i}`
        floodIds.add(id)
        rows.push(record(id, { at: T0 + 1000 * (i + 1), by: 'human:flood', group: 'app' }))
      }
      for (let i = 0; i < DECIDED; i++) {
        const id = `${kind}-decided-${i}`
        decidedIds.add(id)
        rows.push(
          record(id, {
            at: T0 + 1000 * (FLOOD + i + 1),
            by: 'human:flood',
            group: 'db',
            state: DECIDED_STATES[i % DECIDED_STATES.length]!,
          }),
        )
      }
      for (let i = 0; i < rows.length; i += 40)
        await Promise.all(rows.slice(i, i + 40).map((r) => store.insertApproval(r)))

      // the web inbox (development login) and the JSON API as `who`, on one small server
      const web = createApprovalsWeb({
        config: { ...config, web: { insecureDevLogin: true, sessionTtlSeconds: 600 } },
        approvals,
        isAdmin: () => false,
        logger: silentLogger(),
      })
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'https://admin')
        if (url.pathname.startsWith('/api/')) {
          void handleApprovalsApi(req, res, url, { who, isAdmin: false, approvals, config })
          return
        }
        void web.handle(req, res, url)
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    after(async () => {
      server.close()
      await approvals.close()
      await all.close()
    })

    /** Every page of `who`'s listing, PAGE_SIZE at a time, and the count each page gave. */
    async function allPages(
      p: Identity,
      q: { state: 'pending' } | { decided: true },
    ): Promise<{ ids: string[]; totals: Set<number> }> {
      const ids: string[] = []
      const totals = new Set<number>()
      for (let offset = 0; ; offset += PAGE_SIZE) {
        const r = await approvals.page(p, false, { ...q, limit: PAGE_SIZE, offset })
        totals.add(r.total)
        if (r.items.length === 0) break
        ids.push(...r.items.map((a) => a.id))
      }
      return { ids, totals }
    }

    it("keeps an older pending approval in its approvers' inbox and count behind 600 newer ones", async () => {
      const e = await allPages(erin, { state: 'pending' })
      assert.deepEqual([...e.totals], [FLOOD + 1], 'every page counts all of them')
      assert.equal(new Set(e.ids).size, FLOOD + 1, 'no approval on two pages')
      assert.equal(e.ids.at(-1), old, 'the oldest comes last, on the page paging reaches')
      assert.deepEqual(new Set(e.ids.slice(0, -1)), floodIds)

      const o = await approvals.page(olga, false, { state: 'pending', limit: PAGE_SIZE })
      assert.equal(o.total, 1)
      assert.deepEqual(
        o.items.map((a) => a.id),
        [old],
        'on the first page of someone who may decide on it alone',
      )
    })

    it('pages the history through every one of 520 decided approvals', async () => {
      const h = await allPages(olga, { decided: true })
      assert.deepEqual([...h.totals], [DECIDED])
      assert.deepEqual(new Set(h.ids), decidedIds)
      assert.equal(h.ids.length, DECIDED)
      const e = await allPages(erin, { decided: true })
      assert.deepEqual(new Set(e.ids), decidedIds, 'the flood of pending ones is not history')
    })

    it('shows the same in the web inbox and history, and in the JSON API', async () => {
      who = erin
      const login = await request(`${base}/login`)
      const csrfCookie = String(login.headers['set-cookie']).split(';')[0]!
      const csrf = /name="csrf" value="([^"]+)"/.exec(await login.body.text())![1]!
      const signIn = await request(`${base}/login/dev`, {
        method: 'POST',
        headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ name: erin.name, groups: 'db,app', csrf }).toString(),
      })
      await signIn.body.dump()
      assert.equal(signIn.statusCode, 303)
      const cookie = String(signIn.headers['set-cookie']).split(';')[0]!
      const page = async (path: string): Promise<string> => {
        const r = await request(`${base}${path}`, { headers: { cookie } })
        assert.equal(r.statusCode, 200, path)
        return r.body.text()
      }
      const last = Math.ceil((FLOOD + 1) / PAGE_SIZE)
      const first = await page('/approvals')
      assert.match(first, new RegExp(`Requests waiting for a decision: ${FLOOD + 1}<`))
      assert.match(first, new RegExp(`Page 1 of ${last}`))
      assert.ok(!first.includes(`/approvals/${old}"`))
      const end = await page(`/approvals?page=${last}`)
      assert.ok(end.includes(`href="/approvals/${old}"`), 'the last page links the old request')
      const history = await page(`/approvals/history?page=${Math.ceil(DECIDED / PAGE_SIZE)}`)
      assert.match(history, new RegExp(`Decided, expired and used requests: ${DECIDED}<`))
      assert.ok(history.includes(`href="/approvals/${kind}-decided-0"`), 'the oldest decided one')

      const api = await request(`${base}/api/v1/approvals?state=pending&limit=1&offset=${FLOOD}`)
      const body = (await api.body.json()) as { items: ApprovalRecord[]; total: number }
      assert.equal(api.statusCode, 200)
      assert.equal(body.total, FLOOD + 1)
      assert.deepEqual(
        body.items.map((a) => a.id),
        [old],
      )
    })
  })
}
