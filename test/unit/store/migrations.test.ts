// The migrations runner on both databases (an SQLite file, the PostgreSQL server on this
// machine): the released history is unchanged, a fresh database gets all of it, a database left
// at any earlier version by an older Gatehouse is upgraded without losing what it holds, and a
// broken or misordered list changes nothing.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { checkedMigrations, type Database, type Migration } from '../../../src/store/index.ts'
import { MIGRATIONS, storesOver } from '../../../src/stores.ts'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { record } from '../audit/records.ts'
import { pendingApproval } from '../approval/records.ts'
import { DIALECTS } from './support.ts'

/**
 * What existing databases have applied (sha256 of each version's statements as JSON). A
 * released version must never change: add a version instead.
 */
const RELEASED = [
  [1, 'audit records', 'ffe1399812777379cc42f0ae222515bf08febcead672c0ac95b8121889ba2abe'],
  [
    2,
    'sessions (exec, attach, port-forward, followed logs)',
    '0a5f8ce7d0247999d1fa09c561fe2c278a29c821b900066bb96200e57365c054',
  ],
  [
    3,
    'approvals (requests held for people to approve)',
    '4c8e125fd7bbd50ce53969d9d9e2d71d93a1cd70fca5719fbff5e92986a88847',
  ],
  [
    4,
    'approvals by approver set and requester (inboxes in the store, per-identity limits)',
    '6f375707173f1352ebf42c5de1b902bf6eacdd1794eb30bfea704dad98537084',
  ],
] as const

function session(id: string, more: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    kind: 'exec',
    state: 'complete',
    startedAt: '2026-03-01T10:00:00.000Z',
    replica: 'test',
    cluster: 'prod',
    identity: { name: 'github:octo-org/app', groups: [], method: 'oidc', claims: {} },
    principal: null,
    source: { address: '127.0.0.1' },
    namespace: 'ops',
    pod: 'web-0',
    container: 'app',
    command: ['sh'],
    tty: false,
    stdin: false,
    protocol: { transport: 'websocket', subprotocol: 'v5.channel.k8s.io' },
    decision: null,
    bytes: { clientToUpstream: 0, upstreamToClient: 0 },
    ...more,
  }
}

async function applied(db: Database): Promise<{ version: number; at: string }[]> {
  const rows = await db.all<{ version: number | string; applied_at: string }>(
    'SELECT version, applied_at FROM gatehouse_schema_migrations ORDER BY version',
  )
  return rows.map((r) => ({ version: Number(r.version), at: r.applied_at }))
}

async function tableExists(db: Database, name: string): Promise<boolean> {
  const sql =
    db.dialect === 'sqlite'
      ? `SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`
      : `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
  return (await db.all(sql, [name])).length === 1
}

/** An approval row as version 3 stored it (before the approver-set column of version 4). */
async function insertVersion3Approval(db: Database, id: string): Promise<void> {
  const a = pendingApproval({ id })
  const ph = (i: number): string => db.placeholder(i)
  await db.run(
    `INSERT INTO approvals (id, created_ms, expires_ms, identity, cluster, namespace, state, binding, version, record)
     VALUES (${[...Array(10).keys()].map(ph).join(', ')})`,
    [
      a.id,
      Date.parse(a.createdAt),
      Date.parse(a.expiresAt),
      a.requester.name,
      a.cluster,
      a.request.namespace,
      a.state,
      a.binding,
      a.version,
      JSON.stringify(a),
    ],
  )
}

describe('migration history', () => {
  it('is the released one: versions, descriptions and statements unchanged', () => {
    assert.deepEqual(
      MIGRATIONS.map((m) => [
        m.version,
        m.description,
        createHash('sha256').update(JSON.stringify(m.statements)).digest('hex'),
      ]),
      RELEASED,
    )
  })

  it('refuses a list that is not strictly ascending by positive version', () => {
    const m = (version: number): Migration => ({
      version,
      description: `v${version}`,
      statements: [],
    })
    assert.throws(() => checkedMigrations([m(1), m(1)]), {
      name: 'TypeError',
      message: /migration 1 \("v1"\) follows 1 \("v1"\)/,
    })
    assert.throws(() => checkedMigrations([m(2), m(1)]), TypeError)
    assert.throws(() => checkedMigrations([m(0)]), /not a positive integer/)
    assert.throws(() => checkedMigrations([m(1.5)]), /not a positive integer/)
    assert.deepEqual(checkedMigrations([m(1), m(3)]), [m(1), m(3)])
  })
})

for (const [kind, make] of DIALECTS) {
  describe(`migrations: ${kind}`, () => {
    it('a fresh database gets every version, and every repository works on it', async () => {
      const t = make('mig_fresh')
      const stores = storesOver(t.open())
      try {
        await stores.migrate()
        assert.deepEqual(
          (await applied(stores.database)).map((r) => r.version),
          [1, 2, 3, 4],
        )
        const r = record(1)
        await stores.audit.insert([r])
        assert.deepEqual(await stores.audit.get(r.id), r)
        await stores.sessions.saveSession(session('s-fresh'))
        assert.equal((await stores.sessions.getSession('s-fresh'))?.pod, 'web-0')
        await stores.approvals.insertApproval(pendingApproval({ id: 'a-fresh' }))
        assert.equal((await stores.approvals.approverSets()).length, 1)
      } finally {
        await stores.close()
        await t.cleanup()
      }
    })

    for (const at of [1, 2, 3]) {
      it(`a database an older Gatehouse left at version ${at} is upgraded and keeps its rows`, async () => {
        const t = make(`mig_up${at}`)
        // The earlier release: the same statements (see "is the released one"), fewer of them.
        const old = storesOver(t.open())
        const r = record(at)
        try {
          await old.database.migrate(MIGRATIONS.slice(0, at))
          assert.deepEqual(
            (await applied(old.database)).map((x) => x.version),
            MIGRATIONS.slice(0, at).map((m) => m.version),
          )
          await old.audit.insert([r])
          if (at >= 2) await old.sessions.saveSession(session('s-old'))
          if (at === 3) await insertVersion3Approval(old.database, 'a-old')
        } finally {
          await old.close()
        }
        const before = await (async () => {
          const db = t.open()
          try {
            return await applied(db)
          } finally {
            await db.close()
          }
        })()

        const stores = storesOver(t.open())
        try {
          await stores.migrate()
          const now = await applied(stores.database)
          assert.deepEqual(
            now.map((x) => x.version),
            [1, 2, 3, 4],
          )
          assert.deepEqual(now.slice(0, at), before, 'versions already applied are not run again')
          assert.deepEqual(await stores.audit.get(r.id), r)
          if (at >= 2) assert.equal((await stores.sessions.getSession('s-old'))?.id, 's-old')
          if (at === 3) {
            assert.equal((await stores.approvals.getApproval('a-old'))?.state, 'pending')
            assert.deepEqual(
              (await stores.approvals.queryApprovals({ state: 'pending' })).map((a) => a.id),
              ['a-old'],
            )
          }
          // what the upgraded tables add works too
          await stores.approvals.insertApproval(pendingApproval({ id: 'a-new' }))
          const [set] = await stores.approvals.approverSets()
          assert.equal(
            await stores.approvals.countApprovals({ visibleTo: { approverSets: [set!.key] } }),
            1,
          )
          await stores.sessions.saveSession(session('s-new'))
          assert.ok(await stores.sessions.getSession('s-new'))
        } finally {
          await stores.close()
          await t.cleanup()
        }
      })
    }

    it('an older list against a newer database changes nothing (a rolling upgrade)', async () => {
      const t = make('mig_newer')
      const db = t.open()
      try {
        await db.migrate(MIGRATIONS)
        const before = await applied(db)
        await db.migrate(MIGRATIONS.slice(0, 2))
        assert.deepEqual(await applied(db), before)
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('a version that fails leaves none of its statements and is not recorded', async () => {
      const t = make('mig_fail')
      const db = t.open()
      try {
        await db.migrate(MIGRATIONS)
        const broken: Migration = {
          version: 5,
          description: 'broken',
          statements: ['CREATE TABLE probe_five (x TEXT)', 'CREATE TABLE audit_records (x TEXT)'],
        }
        await assert.rejects(db.migrate([...MIGRATIONS, broken]), /audit_records/)
        assert.deepEqual(
          (await applied(db)).map((x) => x.version),
          [1, 2, 3, 4],
        )
        assert.equal(await tableExists(db, 'probe_five'), false, 'rolled back')
        await db.migrate([...MIGRATIONS, { ...broken, statements: broken.statements.slice(0, 1) }])
        assert.deepEqual(
          (await applied(db)).map((x) => x.version),
          [1, 2, 3, 4, 5],
        )
        assert.equal(await tableExists(db, 'probe_five'), true)
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('a misordered list is refused before anything runs', async () => {
      const t = make('mig_order')
      const db = t.open()
      try {
        await assert.rejects(db.migrate([MIGRATIONS[1]!, MIGRATIONS[0]!]), TypeError)
        assert.equal(await tableExists(db, 'gatehouse_schema_migrations'), false)
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('replicas starting together apply each version once', async () => {
      const t = make('mig_race')
      const replicas = [t.open(), t.open(), t.open()]
      try {
        await Promise.all(replicas.map((db) => db.migrate(MIGRATIONS)))
        assert.deepEqual(
          (await applied(replicas[0]!)).map((x) => x.version),
          [1, 2, 3, 4],
        )
      } finally {
        await Promise.all(replicas.map((db) => db.close()))
        await t.cleanup()
      }
    })
  })
}
