// Change notifications: in one process (SQLite) and between replicas over PostgreSQL
// LISTEN/NOTIFY. Every listener of a channel hears every payload, the sender's own included,
// never inside `notify`; channels are named per schema, so replicas of one deployment hear each
// other and another deployment does not; a dropped listening connection comes back.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import {
  inProcessNotifications,
  openPostgres,
  openSqlite,
  type Notifications,
} from '../../../src/store/index.ts'
import { sessionRepository } from '../../../src/sessions/repository.ts'
import { approvalRepository } from '../../../src/approval/repository.ts'
import { join } from 'node:path'
import { dropSchema, freshSchema, PG_URL } from './support.ts'
import { tempDir } from '../../harness/temp-dir.ts'

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Records what a listener hears. */
async function hear(
  n: Notifications,
  channel: string,
): Promise<{
  heard: string[]
  stop: () => Promise<void>
}> {
  const heard: string[] = []
  const stop = await n.listen(channel, (p) => heard.push(p))
  return { heard, stop }
}

describe('in-process notifications', () => {
  it('reach every listener of the channel, the sender included, after notify returns', async () => {
    const n = inProcessNotifications()
    const a = await hear(n, 'approval')
    const b = await hear(n, 'approval')
    const other = await hear(n, 'session_kill')
    await n.notify('approval', 'x-1')
    assert.deepEqual(a.heard, [], 'never inside notify')
    await until('delivery', () => a.heard.length === 1 && b.heard.length === 1)
    await sleep(20)
    assert.deepEqual([a.heard, b.heard, other.heard], [['x-1'], ['x-1'], []])
  })

  it('stop after the unsubscribe, even for a payload sent just before it', async () => {
    const n = inProcessNotifications()
    const a = await hear(n, 'c')
    const b = await hear(n, 'c')
    await n.notify('c', 'first')
    await a.stop()
    await until('b hears', () => b.heard.length === 1)
    await n.notify('c', 'second')
    await until('b hears again', () => b.heard.length === 2)
    assert.deepEqual(a.heard, [])
  })

  it('a listener that throws disturbs no other, and the same handler twice hears twice', async () => {
    const n = inProcessNotifications()
    await n.listen('c', () => {
      throw new Error('listener bug')
    })
    const heard: string[] = []
    const handler = (p: string): void => void heard.push(p)
    await n.listen('c', handler)
    const stop = await n.listen('c', handler)
    await n.notify('c', 'p')
    await until('both subscriptions', () => heard.length === 2)
    await stop()
    await n.notify('c', 'q')
    await until('the remaining one', () => heard.length === 3)
    assert.deepEqual(heard, ['p', 'p', 'q'])
  })

  it('are what an SQLite database offers: not shared, heard in this process', async () => {
    const db = openSqlite(join(tempDir('gh-notify-'), 'g.db'))
    try {
      assert.equal(db.shared, false)
      const a = await hear(db, 'approval')
      await approvalRepository(db).broadcastApprovalChange('approval-7')
      await until('delivery', () => a.heard.length === 1)
      assert.deepEqual(a.heard, ['approval-7'])
    } finally {
      await db.close()
    }
  })
})

describe('PostgreSQL notifications', () => {
  it('reach every replica of the schema (the sender too) and no other schema', async () => {
    const schema = freshSchema('notify')
    const otherSchema = freshSchema('notify_other')
    const a = openPostgres({ connectionString: PG_URL, schema })
    const b = openPostgres({ connectionString: PG_URL, schema })
    const other = openPostgres({ connectionString: PG_URL, schema: otherSchema })
    try {
      assert.equal(a.shared, true)
      const onA = await hear(a, 'approval')
      const onB = await hear(b, 'approval')
      const onOther = await hear(other, 'approval')
      await a.notify('approval', 'approval-42')
      await until('both replicas', () => onA.heard.length === 1 && onB.heard.length === 1)
      await other.notify('approval', 'elsewhere')
      await until('the other deployment', () => onOther.heard.length === 1)
      await sleep(100)
      assert.deepEqual(
        [onA.heard, onB.heard, onOther.heard],
        [['approval-42'], ['approval-42'], ['elsewhere']],
      )
    } finally {
      await Promise.all([a.close(), b.close(), other.close()])
      await dropSchema(schema)
      await dropSchema(otherSchema)
    }
  })

  it('keep the channel names replicas of the previous release listen on', async () => {
    // A rolling upgrade runs both releases at once: kills and approval changes must reach both.
    const schema = freshSchema('notify_compat')
    const db = openPostgres({ connectionString: PG_URL, schema })
    const raw = new pg.Client({ connectionString: PG_URL })
    await raw.connect()
    const heard: { channel: string; payload: string | undefined }[] = []
    raw.on('notification', (m) => heard.push({ channel: m.channel, payload: m.payload }))
    try {
      await raw.query(`LISTEN "gatehouse_session_kill_${schema}"`)
      await raw.query(`LISTEN "gatehouse_approval_${schema}"`)
      await sessionRepository(db).broadcastSessionKill('s-1', 'admin')
      await approvalRepository(db).broadcastApprovalChange('a-1')
      await until('both', () => heard.length === 2)
      assert.deepEqual(heard, [
        {
          channel: `gatehouse_session_kill_${schema}`,
          payload: JSON.stringify({ id: 's-1', by: 'admin' }),
        },
        { channel: `gatehouse_approval_${schema}`, payload: 'a-1' },
      ])
    } finally {
      await raw.end()
      await db.close()
    }
  })

  it('session kills reach the other replica; a malformed payload is ignored', async () => {
    const schema = freshSchema('notify_kill')
    const a = openPostgres({ connectionString: PG_URL, schema })
    const b = openPostgres({ connectionString: PG_URL, schema })
    try {
      const kills: [string, string][] = []
      const stop = await sessionRepository(b).onSessionKill((id, by) => kills.push([id, by]))
      assert.equal(sessionRepository(a).shared, true)
      await a.notify('session_kill', '{"id": 7}')
      await a.notify('session_kill', 'not json')
      await sessionRepository(a).broadcastSessionKill('s-9', 'human:alice')
      await until('the kill', () => kills.length === 1)
      await sleep(100)
      assert.deepEqual(kills, [['s-9', 'human:alice']])
      await stop()
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a listening connection the server drops comes back', async () => {
    const schema = freshSchema('notify_drop')
    const a = openPostgres({ connectionString: PG_URL, schema })
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    try {
      const onA = await hear(a, 'approval')
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`,
        [`LISTEN "gatehouse_approval_${schema}"`],
      )
      assert.equal(killed.rowCount, 1, 'the listening connection was found and dropped')
      // Sent while it is down: lost (callers poll as well); sent after it is back: heard.
      const deadline = Date.now() + 10_000
      let n = 0
      while (onA.heard.length === 0 && Date.now() < deadline) {
        await a.notify('approval', `after-${++n}`)
        await sleep(200)
      }
      assert.ok(onA.heard.length > 0, 'heard again after the reconnect')
      await onA.stop()
    } finally {
      await admin.end()
      await a.close()
    }
  })

  it('close ends the listening connections', async () => {
    const schema = freshSchema('notify_close')
    const a = openPostgres({ connectionString: PG_URL, schema })
    const b = openPostgres({ connectionString: PG_URL, schema })
    try {
      const onA = await hear(a, 'approval')
      await a.close()
      await b.notify('approval', 'after-close')
      await sleep(300)
      assert.deepEqual(onA.heard, [])
      const admin = new pg.Client({ connectionString: PG_URL })
      await admin.connect()
      const { rows } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE query = $1`, [
        `LISTEN "gatehouse_approval_${schema}"`,
      ])
      await admin.end()
      assert.equal(rows.length, 0, 'no connection is left listening')
    } finally {
      await b.close()
    }
  })
})
