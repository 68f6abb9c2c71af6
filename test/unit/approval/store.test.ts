// Approval records in both databases (an SQLite file, the PostgreSQL server on this machine):
// insert, get, filters, compare-and-set updates (two writers of one version: one wins), and
// change notifications between two PostgreSQL connections (what releases holds on replicas).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { postgresStores, sqliteStores, type Stores } from '../../../src/stores.ts'
import { pendingApproval } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const schema = `gh_test_appr_${process.pid}_${Date.now()}`
const stores: [string, () => Stores][] = [
  ['sqlite', () => sqliteStores(join(tempDir('gh-appr-'), 'audit.db'))],
  ['postgres', () => postgresStores({ connectionString: PG_URL, schema })],
]

after(async () => {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
})

for (const [kind, open] of stores) {
  describe(`approvals in the ${kind} store`, () => {
    const db = open()
    const store = db.approvals
    after(() => db.close())

    it('inserts, reads and filters approvals', async () => {
      await db.migrate()
      const a = pendingApproval({ id: `${kind}-1` })
      const b = pendingApproval({ id: `${kind}-2`, binding: 'c'.repeat(64), state: 'denied' })
      await store.insertApproval(a)
      await store.insertApproval(b)
      assert.deepEqual(await store.getApproval(a.id), a)
      assert.equal(await store.getApproval('nope'), undefined)
      assert.deepEqual(
        (await store.queryApprovals({ state: 'pending' })).map((x) => x.id),
        [a.id],
      )
      assert.deepEqual(
        (await store.queryApprovals({ binding: 'c'.repeat(64) })).map((x) => x.id),
        [b.id],
      )
      assert.deepEqual((await store.queryApprovals({ identity: 'human:*' })).length, 2)
    })

    it('retention removes old decided approvals and keeps pending ones', async () => {
      const old = '2020-01-01T00:00:00.000Z'
      await store.insertApproval(pendingApproval({ id: `${kind}-old-pending`, createdAt: old }))
      await store.insertApproval(
        pendingApproval({ id: `${kind}-old-used`, createdAt: old, state: 'used' }),
      )
      await store.deleteBefore(Date.parse('2021-01-01T00:00:00Z'))
      assert.ok(await store.getApproval(`${kind}-old-pending`))
      assert.equal(await store.getApproval(`${kind}-old-used`), undefined)
      assert.ok(await store.getApproval(`${kind}-1`), 'newer approvals stay')
    })

    it('lists by state, approver set and requester, a page at a time with a count', async () => {
      const sre = [{ group: 'sre' }]
      const db = [{ group: 'db' }]
      for (let i = 0; i < 7; i++)
        await store.insertApproval(
          pendingApproval({
            id: `${kind}-page-${i}`,
            createdAt: new Date(Date.UTC(2027, 0, 1, 0, 0, i)).toISOString(),
            settings: { ...pendingApproval().settings, approvers: i < 5 ? sre : db },
            requester: { ...pendingApproval().requester, name: `human:req\u0000${i % 2}` },
          }),
        )
      const sets = await store.approverSets()
      const dbKey = sets.find((x) => JSON.stringify(x.approvers) === JSON.stringify(db))!.key
      const visibleTo = { approverSets: [dbKey] }
      assert.equal(await store.countApprovals({ state: 'pending', visibleTo }), 2)
      const page = await store.queryApprovals({ state: 'pending', visibleTo, limit: 1, offset: 1 })
      assert.deepEqual(
        page.map((a) => a.id),
        [`${kind}-page-5`],
      )
      // a requester's own (its name holds U+0000: stored and matched exactly on both stores)
      const mine = { approverSets: [], requester: 'human:req\u00001' }
      const own = await store.queryApprovals({ visibleTo: mine, sinceMs: Date.UTC(2027, 0, 1) })
      assert.deepEqual(
        own.map((a) => a.id),
        [`${kind}-page-5`, `${kind}-page-3`, `${kind}-page-1`],
      )
      assert.equal(await store.countApprovals({ visibleTo: { approverSets: [] } }), 0)
    })

    it('updates by compare-and-set: of two writers of one version, one wins', async () => {
      const a = pendingApproval({ id: `${kind}-cas` })
      await store.insertApproval(a)
      const first = { ...a, state: 'approved' as const, version: 2 }
      const second = { ...a, state: 'denied' as const, version: 2 }
      const results = await Promise.all([store.updateApproval(first), store.updateApproval(second)])
      assert.deepEqual(results.filter(Boolean).length, 1)
      const stored = (await store.getApproval(a.id))!
      assert.equal(stored.version, 2)
      assert.equal(stored.state, results[0] ? 'approved' : 'denied')
      assert.equal(await store.updateApproval({ ...stored, version: 2 }), false, 'a stale version')
    })
  })
}

describe('approval change notifications (PostgreSQL)', () => {
  it('reach another connection of the same schema', async () => {
    const a = postgresStores({ connectionString: PG_URL, schema })
    const b = postgresStores({ connectionString: PG_URL, schema })
    try {
      await a.migrate()
      const heard: string[] = []
      const stop = await b.approvals.onApprovalChange((id) => heard.push(id))
      await a.approvals.broadcastApprovalChange('approval-42')
      const deadline = Date.now() + 5000
      while (heard.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20))
      await stop()
      assert.deepEqual(heard, ['approval-42'])
    } finally {
      await a.close()
      await b.close()
    }
  })
})
