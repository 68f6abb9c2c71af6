// Audit records in both databases against the real thing (an SQLite file, the PostgreSQL server on this
// machine): one migration history, idempotent inserts, filters, retention.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { postgresStores, sqliteStores, type Stores } from '../../../src/stores.ts'
import { record } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

export const PG_URL =
  process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
}

const stores: [string, () => Stores, () => Promise<void>][] = [
  ['sqlite', () => sqliteStores(join(tempDir('gh-audit-'), 'audit.db')), async () => {}],
  (() => {
    const schema = `gh_test_${process.pid}_${Date.now()}`
    return [
      'postgres',
      () => postgresStores({ connectionString: PG_URL, schema }),
      () => dropSchema(schema),
    ] as [string, () => Stores, () => Promise<void>]
  })(),
]

for (const [kind, open, cleanup] of stores) {
  describe(`audit store: ${kind}`, () => {
    const db = open()
    const store = db.audit
    after(async () => {
      await db.close()
      await cleanup()
    })

    it('migrates twice without harm (replicas start together)', async () => {
      await Promise.all([db.migrate(), db.migrate()])
      await db.migrate()
      assert.equal(await store.count(), 0)
    })

    it('stores records whole and reads them back by id', async () => {
      const r = record(1)
      await store.insert([r])
      assert.deepEqual(await store.get(r.id), r)
      assert.equal(await store.get('no-such-id'), undefined)
    })

    it('an insert retried after an ambiguous failure does not duplicate', async () => {
      const batch = [record(2), record(3)]
      await store.insert(batch)
      await store.insert(batch)
      assert.equal(
        await store.count({
          identity: batch[0]!.identity!.name,
          sinceMs: Date.parse(batch[0]!.time),
          untilMs: Date.parse(batch[0]!.time) + 1,
        }),
        1,
      )
    })

    it('filters by identity (with globs), cluster, namespace, verb, resource, decision and time', async () => {
      const batch = Array.from({ length: 40 }, (_, i) => record(100 + i))
      await store.insert(batch)
      const since = Date.parse(batch[0]!.time)
      const expect = (pred: (r: (typeof batch)[number]) => boolean): number =>
        batch.filter(pred).length
      assert.equal(await store.count({ sinceMs: since }), 40)
      assert.equal(
        await store.count({ sinceMs: since, identity: 'github:*' }),
        expect((r) => r.identity!.name.startsWith('github:')),
      )
      assert.equal(
        await store.count({ sinceMs: since, identity: 'k8s:serviceaccount:ops:backup' }),
        expect((r) => r.identity!.name.startsWith('k8s:')),
      )
      assert.equal(
        await store.count({ sinceMs: since, cluster: 'prod', namespace: 'ns-1' }),
        expect((r) => r.cluster === 'prod' && r.request!.namespace === 'ns-1'),
      )
      assert.equal(
        await store.count({ sinceMs: since, verb: 'delete', decision: 'deny' }),
        expect((r) => r.request!.verb === 'delete'),
      )
      assert.equal(await store.count({ sinceMs: since, resource: 'secrets' }), 0)
      const page = await store.query({ sinceMs: since, limit: 5 })
      assert.deepEqual(
        page.map((r) => r.id),
        batch
          .slice(-5)
          .reverse()
          .map((r) => r.id),
        'newest first',
      )
      // LIKE metacharacters in a filter are literal
      assert.equal(await store.count({ identity: 'github:octo_org*' }), 0)
    })

    it('retention removes records older than the cut-off, and only those', async () => {
      const old = record(0, { time: '2020-01-01T00:00:00.000Z' })
      await store.insert([old])
      const before = await store.count()
      assert.equal(await store.deleteBefore(Date.parse('2021-01-01T00:00:00Z')), 1)
      assert.equal(await store.count(), before - 1)
      assert.equal(await store.get(old.id), undefined)
    })

    it('takes large batches quickly enough for the writer (5,000 records in one insert)', async () => {
      const batch = Array.from({ length: 5000 }, (_, i) => record(10_000 + i))
      await store.insert(batch)
      assert.equal(await store.count({ sinceMs: Date.parse(batch[0]!.time) }), 5000)
    })
  })
}
