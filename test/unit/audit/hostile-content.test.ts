// Nothing a caller sends can wedge the audit store (issue 18 item 7): U+0000, lone surrogates
// and the escape mark itself round-trip exactly through both real stores and their filters; a
// record the store refuses for its content (an index row too large, a value that cannot be
// serialised) is stored escaped and flagged while the rest of its batch is stored as it is;
// the spool never replays such a record as a blocker.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { AuditWriter, type AuditRecord } from '../../../src/audit/index.ts'
import { fromStorableText, storableText } from '../../../src/store/index.ts'
import { postgresStores, sqliteStores, type Stores } from '../../../src/stores.ts'
import { record } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

const HOSTILE = [
  'a\u0000b',
  '\u0000',
  'lone high \ud800 here',
  'lone low \udc00',
  'reversed \udc00\ud800',
  '\uffffstarts with the mark',
  'pair 😀 stays',
  'back\\slash "quote" \u0001\u001f',
]

describe('storableText', () => {
  for (const s of HOSTILE)
    it(`round-trips ${JSON.stringify(s)}`, () => {
      const stored = storableText(s)
      assert.equal(fromStorableText(stored), s)
      assert.equal(stored.includes('\u0000'), false)
      assert.equal(/\p{Cs}/u.test(stored), false)
    })
  it('leaves ordinary strings as they are', () => {
    for (const s of ['github:octo-org/app', 'pair 😀', 'back\\slash', ''])
      assert.equal(storableText(s), s)
  })
})

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
}

const hostileRecord = (i: number, s: string): AuditRecord =>
  record(i, {
    identity: { name: `evil:${s}`, groups: [s], method: 'oidc', claims: { sub: s } },
    request: {
      method: 'POST',
      target: `/api/v1/namespaces/ns/configmaps?x=${s}`,
      isResourceRequest: true,
      verb: 'create',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'configmaps',
      subresource: '',
      namespace: `ns${s}`,
      name: s,
    },
    requestBody: {
      contentType: 'application/json',
      encoding: 'utf8',
      data: JSON.stringify({ data: { k: s } }),
      truncated: false,
      bytes: 10,
    },
  })

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`hostile content: ${kind}`, () => {
    const schema = `gh_hostile_${process.pid}_${Date.now()}`
    const open = (): Stores =>
      kind === 'sqlite'
        ? sqliteStores(join(tempDir('gh-hostile-'), 'audit.db'))
        : postgresStores({ connectionString: PG_URL, schema })
    after(() => (kind === 'postgres' ? dropSchema(schema) : undefined))

    it('stores every hostile string exactly and finds it by its exact identity', async () => {
      const stores = open()
      const store = stores.audit
      await stores.migrate()
      const records = HOSTILE.map((s, i) => hostileRecord(i, s))
      await store.insert(records)
      for (const r of records) {
        assert.deepEqual(await store.get(r.id), r)
        const found = await store.query({ identity: r.identity!.name })
        assert.deepEqual(
          found.map((f) => f.id),
          [r.id],
          `the identity filter matches ${JSON.stringify(r.identity!.name)} exactly`,
        )
        assert.equal((await store.query({ namespace: r.request!.namespace })).length, 1)
      }
      await stores.close()
    })

    it('isolates a record the store refuses for its content; the rest of the batch is stored', async () => {
      const stores = open()
      const store = stores.audit
      await stores.migrate()
      const w = new AuditWriter(store, {
        maxBufferedRecords: 1000,
        batchSize: 50,
        flushIntervalMs: 5,
        onStoreFailure: 'refuseRequests',
      })
      const good = Array.from({ length: 10 }, (_, i) => record(i))
      const cyclic = record(100) as AuditRecord & { self?: unknown }
      cyclic.identity!.claims = { loop: cyclic }
      // PostgreSQL: a btree index row holds about 2.7 KB, so a 9 KB identity cannot be indexed
      // (SQLSTATE 54000). SQLite has no such bound and takes it as it is.
      const huge = record(101, {
        identity: {
          name: randomBytes(4500).toString('hex'),
          groups: [],
          method: 'oidc',
          claims: {},
        },
      })
      for (const r of [...good.slice(0, 5), cyclic, huge, ...good.slice(5)]) w.write(r)
      assert.equal(await w.flush(10_000), true, 'the queue drains: nothing blocks it')
      for (const r of good) assert.deepEqual(await store.get(r.id), r)
      const cyc = await store.get(cyclic.id)
      assert.equal(cyc?.storage?.escaped, true)
      assert.match(cyc.storage.reason, /circular/i)
      const big = await store.get(huge.id)
      if (kind === 'postgres') {
        assert.equal(big?.storage?.escaped, true)
        assert.match(big.storage.reason, /index row/)
        assert.ok(big.identity!.name.length <= 512)
        const original = JSON.parse(
          Buffer.from(big.storage.original, 'base64').toString(),
        ) as AuditRecord
        assert.equal(original.identity?.name, huge.identity!.name, 'the original is kept')
        assert.equal(w.stats().quarantined, 2)
      } else {
        assert.deepEqual(big, huge)
        assert.equal(w.stats().quarantined, 1)
      }
      await w.close(1000)
      await stores.close()
    })

    it('replays a spool holding poisoned and unreadable lines without blocking', async () => {
      const spoolDir = tempDir('gh-hostile-spool-')
      const ok = hostileRecord(1, 'x\u0000y')
      const huge = record(2, {
        identity: {
          name: randomBytes(4500).toString('hex'),
          groups: [],
          method: 'oidc',
          claims: {},
        },
      })
      writeFileSync(
        join(spoolDir, 'audit-spool-1-1.jsonl'),
        [JSON.stringify(ok), '{"torn": tr', JSON.stringify(huge)].join('\n') + '\n',
      )
      const stores = open()
      const store = stores.audit
      await stores.migrate()
      const w = new AuditWriter(store, {
        maxBufferedRecords: 1000,
        batchSize: 50,
        flushIntervalMs: 5,
        onStoreFailure: 'refuseRequests',
        spoolDir,
      })
      assert.equal(w.recoverSpool(), 3)
      assert.equal(await w.flush(10_000), true)
      assert.deepEqual(await store.get(ok.id), ok)
      assert.ok(await store.get(huge.id), 'the oversized record is stored (escaped on PostgreSQL)')
      const unreadable = (await store.query({ limit: 100 })).find((r) =>
        r.id.startsWith('gatehouse-spool-unreadable-'),
      )
      assert.equal(
        Buffer.from(unreadable!.storage!.original, 'base64').toString(),
        '{"torn": tr',
        'the unreadable line is kept as evidence',
      )
      assert.equal(w.recoverSpool(), 0)
      await w.close(1000)
      await stores.close()
    })
  })
}
