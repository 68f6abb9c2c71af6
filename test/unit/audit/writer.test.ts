// The audit writer: never blocks, never drops under refuseRequests, refuses admission once its
// buffer is full, recovers when the store does, spools on shutdown.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { AuditWriter, type AuditRecord, type AuditRepository } from '../../../src/audit/index.ts'
import { sqliteStores } from '../../../src/stores.ts'
import { record } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

/** A real SQLite database whose inserts can be made to fail, as a store outage would. */
function flakyStore(): AuditRepository & {
  down: boolean
  inserted: AuditRecord[]
  migrate(): Promise<void>
} {
  const stores = sqliteStores(join(tempDir('gh-writer-'), 'audit.db'))
  const inner = stores.audit
  const s = {
    ...inner,
    migrate: () => stores.migrate(),
    down: false,
    inserted: [] as AuditRecord[],
    async insert(records: readonly AuditRecord[]) {
      if (s.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
      await inner.insert(records)
      s.inserted.push(...records)
    },
  }
  return s
}

const options = {
  maxBufferedRecords: 100,
  batchSize: 10,
  flushIntervalMs: 5,
  onStoreFailure: 'refuseRequests' as const,
}

describe('audit writer', () => {
  it('writes everything in batches', async () => {
    const store = flakyStore()
    await store.migrate()
    const w = new AuditWriter(store, options)
    for (let i = 0; i < 35; i++) w.write(record(i))
    assert.equal(await w.flush(), true)
    assert.equal(await store.count(), 35)
    assert.equal(w.stats().written, 35)
    await w.close(1000)
  })

  it('buffers while the store is down, refuses admission when full, loses nothing', async () => {
    const store = flakyStore()
    await store.migrate()
    const w = new AuditWriter(store, options)
    store.down = true
    const written: string[] = []
    let refused = 0
    for (let i = 0; i < 150; i++) {
      if (!w.admits()) {
        refused++
        continue
      }
      const r = record(i)
      written.push(r.id)
      w.write(r)
    }
    assert.equal(written.length, 100)
    assert.equal(refused, 50)
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(w.stats().storeHealthy, false)
    assert.match(w.stats().lastError ?? '', /ECONNREFUSED/)
    store.down = false
    assert.equal(await w.flush(10_000), true)
    // The first admission after the outage ends the run of refusals: one summary record says
    // how many requests were refused and when.
    assert.equal(w.admits(), true)
    assert.equal(w.stats().storeHealthy, true)
    assert.equal(await w.flush(10_000), true)
    const ids = new Set(store.inserted.map((r) => r.id))
    assert.equal(written.filter((id) => !ids.has(id)).length, 0, 'every admitted record is stored')
    assert.equal(await store.count(), 101)
    const summary = store.inserted.find((r) => r.refusedWhileUnavailable)
    assert.ok(summary, 'a summary record of the refusals')
    assert.equal(summary.refusedWhileUnavailable!.requests, 50)
    assert.equal(summary.decision?.rule, 'builtin:audit-unavailable')
    assert.match(summary.error?.message ?? '', /^50 request\(s\) refused from /)
    assert.equal(w.stats().refused, 50)
    await w.close(1000)
  })

  it('dropRecords keeps admitting and counts what it drops', async () => {
    const store = flakyStore()
    await store.migrate()
    const w = new AuditWriter(store, { ...options, onStoreFailure: 'dropRecords' })
    store.down = true
    for (let i = 0; i < 150; i++) {
      assert.equal(w.admits(), true)
      w.write(record(i))
    }
    assert.equal(w.stats().dropped, 50)
    store.down = false
    await w.flush(10_000)
    await w.close(1000)
  })

  it('spools what the store will not take at shutdown and writes it at the next start', async () => {
    const spoolDir = tempDir('gh-spool-')
    const store = flakyStore()
    await store.migrate()
    store.down = true
    const w = new AuditWriter(store, { ...options, spoolDir })
    const ids = Array.from({ length: 7 }, (_, i) => {
      const r = record(i)
      w.write(r)
      return r.id
    })
    await w.close(200)
    const store2 = flakyStore()
    await store2.migrate()
    const w2 = new AuditWriter(store2, { ...options, spoolDir })
    assert.equal(w2.recoverSpool(), 7)
    assert.equal(await w2.flush(), true)
    assert.deepEqual(new Set(store2.inserted.map((r) => r.id)), new Set(ids))
    assert.equal(w2.recoverSpool(), 0, 'the spool is consumed once')
    await w2.close(1000)
  })
})
