// The database layer on both dialects: every bound string is made storable here (U+0000 and
// lone surrogates reach PostgreSQL and SQLite and come back exactly, and filters match them),
// batch inserts skip rows already stored, and a read-only SQLite database refuses writes.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fromStorableText, openSqlite, type BatchTable } from '../../../src/store/index.ts'
import { DIALECTS } from './support.ts'

const SCRATCH = [
  {
    version: 1,
    description: 'scratch',
    statements: ['CREATE TABLE scratch (id TEXT PRIMARY KEY, n BIGINT, v TEXT)'],
  },
]
const TABLE: BatchTable = {
  name: 'scratch',
  columns: [
    ['id', 'TEXT'],
    ['n', 'BIGINT'],
    ['v', 'TEXT'],
  ],
  key: 'id',
}
const HOSTILE = ['a\u0000b', 'lone \ud800', '\uffffmark', 'plain']

for (const [kind, make] of DIALECTS) {
  describe(`database: ${kind}`, () => {
    it('binds every string storable: run, write and batches; reads and filters match', async () => {
      const t = make('db_storable')
      const db = t.open()
      try {
        await db.migrate(SCRATCH)
        const ph = (i: number): string => db.placeholder(i)
        await db.run(`INSERT INTO scratch (id, n, v) VALUES (${ph(0)}, ${ph(1)}, ${ph(2)})`, [
          'run',
          1,
          HOSTILE[0],
        ])
        await db.write(`INSERT INTO scratch (id, n, v) VALUES (${ph(0)}, ${ph(1)}, ${ph(2)})`, [
          'write',
          2,
          HOSTILE[1],
        ])
        assert.equal(
          await db.insertBatch(TABLE, [
            ['batch-1', 3, HOSTILE[2]],
            ['batch-2', 4, HOSTILE[3]],
          ]),
          2,
        )
        const rows = await db.all<{ id: string; v: string }>('SELECT id, v FROM scratch ORDER BY n')
        assert.deepEqual(
          rows.map((r) => fromStorableText(r.v)),
          HOSTILE,
          'each value comes back exactly',
        )
        assert.equal(rows[3]!.v, 'plain', 'ordinary strings are stored as they are')
        for (const v of HOSTILE) {
          const found = await db.all(`SELECT id FROM scratch WHERE v = ${ph(0)}`, [v])
          assert.equal(found.length, 1, `the filter matches ${JSON.stringify(v)}`)
        }
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('a batch skips rows whose key is stored, and an empty batch is nothing', async () => {
      const t = make('db_batch')
      const db = t.open()
      try {
        await db.migrate(SCRATCH)
        assert.equal(await db.insertBatch(TABLE, [['k', 1, 'first']]), 1)
        assert.equal(
          await db.insertBatch(TABLE, [
            ['k', 2, 'again'],
            ['l', 3, 'new'],
          ]),
          1,
        )
        assert.equal(await db.insertBatch(TABLE, []), 0)
        assert.deepEqual(
          await db.all<{ id: string; v: string }>('SELECT id, v FROM scratch ORDER BY id'),
          [
            { id: 'k', v: 'first' },
            { id: 'l', v: 'new' },
          ],
        )
        assert.equal(await db.write(`DELETE FROM scratch WHERE n < ${db.placeholder(0)}`, [3]), 1)
      } finally {
        await db.close()
        await t.cleanup()
      }
    })
  })
}

describe('database: sqlite read-only', () => {
  it('reads, and refuses every kind of write naming the file', async () => {
    const [, make] = DIALECTS[0]!
    const t = make('db_ro')
    const rw = t.open()
    await rw.migrate(SCRATCH)
    await rw.insertBatch(TABLE, [['k', 1, 'v']])
    const path = rw.location
    await rw.close()
    const ro = openSqlite(path, { readonly: true })
    try {
      assert.deepEqual(await ro.all('SELECT id FROM scratch'), [{ id: 'k' }])
      const refused = new RegExp(
        `${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is open read-only`,
      )
      await assert.rejects(ro.run('DELETE FROM scratch'), refused)
      await assert.rejects(ro.write('DELETE FROM scratch'), refused)
      await assert.rejects(ro.insertBatch(TABLE, [['m', 2, 'w']]), refused)
      assert.deepEqual(await ro.all('SELECT id FROM scratch'), [{ id: 'k' }])
    } finally {
      await ro.close()
    }
  })
})
