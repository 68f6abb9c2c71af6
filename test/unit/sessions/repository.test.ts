// Session records in both databases: saved at start and replaced at the end, listed with
// filters newest first, expired by retention except while live.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { sessionRepository } from '../../../src/sessions/repository.ts'
import { MIGRATIONS } from '../../../src/stores.ts'
import { DIALECTS } from '../store/support.ts'

function session(i: number, more: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: `s-${i}`,
    kind: i % 2 ? 'exec' : 'portforward',
    state: 'live',
    startedAt: new Date(Date.UTC(2026, 2, 1, 10, 0, i)).toISOString(),
    replica: i % 3 ? 'gh-a' : 'gh-b',
    cluster: 'prod',
    identity: { name: `human:user\u0000${i % 2}`, groups: [], method: 'oidc', claims: {} },
    principal: null,
    source: { address: '127.0.0.1' },
    namespace: `ns-${i % 2}`,
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

for (const [kind, make] of DIALECTS) {
  describe(`session records: ${kind}`, () => {
    it('a record saved at start is replaced at the end', async () => {
      const t = make('sess_save')
      const db = t.open()
      try {
        await db.migrate(MIGRATIONS)
        const sessions = sessionRepository(db)
        const live = session(1)
        await sessions.saveSession(live)
        assert.deepEqual(await sessions.getSession(live.id), live)
        const ended: SessionRecord = {
          ...live,
          state: 'complete',
          endedAt: '2026-03-01T10:05:00.000Z',
          exitCode: 0,
        }
        await sessions.saveSession(ended)
        assert.deepEqual(await sessions.getSession(live.id), ended)
        assert.equal(await sessions.getSession('no-such-session'), undefined)
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('lists by identity (exact, U+0000 included), kind, state and replica, newest first', async () => {
      const t = make('sess_query')
      const db = t.open()
      try {
        await db.migrate(MIGRATIONS)
        const sessions = sessionRepository(db)
        const all = Array.from({ length: 6 }, (_, i) => session(i))
        for (const s of all) await sessions.saveSession(s)
        const ids = async (q: Parameters<typeof sessions.querySessions>[0]): Promise<string[]> =>
          (await sessions.querySessions(q)).map((s) => s.id)
        assert.deepEqual(await ids({}), ['s-5', 's-4', 's-3', 's-2', 's-1', 's-0'])
        assert.deepEqual(await ids({ identity: 'human:user\u00001' }), ['s-5', 's-3', 's-1'])
        assert.deepEqual(await ids({ kind: 'portforward', replica: 'gh-b' }), ['s-0'])
        assert.deepEqual(await ids({ namespace: 'ns-0', limit: 2 }), ['s-4', 's-2'])
        assert.deepEqual(await ids({ state: 'complete' }), [])
      } finally {
        await db.close()
        await t.cleanup()
      }
    })

    it('retention removes old ended sessions and keeps live ones however old', async () => {
      const t = make('sess_retention')
      const db = t.open()
      try {
        await db.migrate(MIGRATIONS)
        const sessions = sessionRepository(db)
        const old = '2020-01-01T00:00:00.000Z'
        await sessions.saveSession(session(1, { id: 'old-live', startedAt: old }))
        await sessions.saveSession(
          session(2, { id: 'old-ended', startedAt: old, state: 'complete' }),
        )
        await sessions.saveSession(session(3, { id: 'new-ended', state: 'terminated' }))
        assert.equal(await sessions.deleteBefore(Date.parse('2021-01-01T00:00:00Z')), 1)
        assert.ok(await sessions.getSession('old-live'))
        assert.equal(await sessions.getSession('old-ended'), undefined)
        assert.ok(await sessions.getSession('new-ended'))
      } finally {
        await db.close()
        await t.cleanup()
      }
    })
  })
}
