// The request journal: an append resolves only once the record is in the file; concurrent
// appends share writes (group commit); what a run leaves pending (kill -9) is recovered at the
// next open with its outcome marked unknown; settled lines go at rotation and on close.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { AuditJournal } from '../../../src/audit/index.ts'
import { record } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.jsonl'))
const lines = (dir: string): string[] =>
  segments(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l),
  )

describe('audit journal', () => {
  it('has each record in the file when its append resolves', async () => {
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: true, maxSegmentBytes: 1 << 20 })
    const records = Array.from({ length: 200 }, (_, i) => record(i))
    await Promise.all(
      records.map((r) =>
        j.append(r).then(() => {
          assert.ok(
            lines(dir).some((l) => l.includes(r.id)),
            'on disk before the append resolves',
          )
        }),
      ),
    )
    assert.equal(j.pending, 200)
    await j.close()
    assert.equal(lines(dir).length, 200, 'pending lines stay when the journal closes')
  })

  it('recovers what a crashed run left pending, marked outcome unknown, once', async () => {
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    const records = Array.from({ length: 5 }, (_, i) => record(i))
    for (const r of records) await j.append(r)
    j.settle([records[0]!.id, records[1]!.id])
    // no close: the process "dies" here; a second run opens the same directory
    const j2 = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    const recovered = j2.recovered()
    // settling is in memory only: after a crash every line is recovered, and the store's
    // idempotent insert keeps the final record where one was written
    assert.deepEqual(recovered.map((r) => r.id).sort(), records.map((r) => r.id).sort())
    for (const r of recovered) {
      assert.equal(r.response.code, 0)
      assert.match(r.recovered!.reason, /outcome is unknown/)
    }
    j2.settle(recovered.map((r) => r.id))
    await j2.close()
    assert.deepEqual(segments(dir), [], 'nothing pending: the segment is removed on close')
    const j3 = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    assert.equal(j3.recovered().length, 0)
    await j3.close()
  })

  it('skips a torn last line (an append the crash interrupted was never acknowledged)', async () => {
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    await j.append(record(1))
    const { appendFileSync } = await import('node:fs')
    appendFileSync(join(dir, segments(dir)[0]!), '{"id":"torn","resp')
    const j2 = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    assert.equal(j2.recovered().length, 1)
    await j2.close()
  })

  it('rotates by size, carrying only pending lines forward', async () => {
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 64 * 1024 })
    const keep = record(0)
    await j.append(keep)
    for (let i = 1; i < 400; i++) {
      const r = record(i)
      await j.append(r)
      j.settle([r.id])
    }
    assert.equal(segments(dir).length, 1)
    const left = lines(dir)
    assert.ok(left.length < 200, `rotated: ${left.length} lines left`)
    assert.ok(
      left.some((l) => l.includes(keep.id)),
      'the pending line is carried forward',
    )
    await j.close()
  })

  it('refuses appends after close', async () => {
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: false, maxSegmentBytes: 1 << 20 })
    await j.close()
    await assert.rejects(j.append(record(1)), /closed/)
    assert.equal(j.healthy, false)
  })
})

describe('audit journal failures', () => {
  it('rejects appends it cannot write and turns the writer away from new requests', async () => {
    const { rmSync, mkdirSync } = await import('node:fs')
    const { AuditWriter } = await import('../../../src/audit/index.ts')
    const { sqliteStores } = await import('../../../src/stores.ts')
    const dir = tempDir('gh-journal-')
    const j = AuditJournal.open({ dir, fsync: true, maxSegmentBytes: 64 * 1024 })
    const stores = sqliteStores(join(tempDir('gh-journal-db-'), 'a.db'))
    await stores.migrate()
    const w = new AuditWriter(stores.audit, {
      maxBufferedRecords: 100,
      batchSize: 10,
      flushIntervalMs: 5,
      onStoreFailure: 'refuseRequests',
      journal: j,
    })
    // The directory disappears (a volume unmounted, a full disk would be alike): the next
    // segment cannot be created.
    rmSync(dir, { recursive: true })
    let failed = 0
    for (let i = 0; i < 200 && !failed; i++) {
      await w.begin(record(i)).catch(() => failed++)
    }
    assert.equal(failed, 1, 'an append that cannot be made durable rejects')
    assert.equal(w.accepting(), false, 'no new requests while the journal fails')
    assert.equal(w.admits(), false)
    mkdirSync(dir)
    await new Promise((r) => setTimeout(r, 1100))
    assert.equal(w.accepting(), true, 'accepting again after the cooldown')
    await w.begin(record(999))
    await w.close(1000)
    await stores.close()
  })
})
