// Two Gatehouse replicas on one PostgreSQL: a session relayed by one is listed by the other and
// can be killed through the other's admin API (PostgreSQL NOTIFY reaches the replica that relays
// it); the kubectl client is told, the record says who killed it.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { Agent, request } from 'undici'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { kubectl } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { namespaceWithPods } from '../support.ts'
import { authenticationConfig, CI_REPOSITORY, useGatewayEnv } from './env.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `gh_e2e_replicas_${process.pid}`
const RUN = Math.random().toString(36).slice(2, 6)

describe('sessions across replicas (PostgreSQL)', () => {
  const env = useGatewayEnv()
  const replicas: RunningGatehouse[] = []

  before(async () => {
    const e = env()
    for (let i = 0; i < 2; i++)
      replicas.push(
        await startGatehouse(e.cluster, {
          authentication: authenticationConfig(e.cluster, e.issuer),
          upstreamTokenFile: e.upstreamTokenFile,
          overrides: {
            audit: { store: { postgres: { url: PG_URL, schema: SCHEMA } } },
            admin: { listen: { address: '127.0.0.1', port: 0 }, subjects: [{ name: 'github:*' }] },
          },
        }),
      )
  })
  after(async () => {
    for (const r of replicas) await r.stop()
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await client.end()
  })

  async function admin(
    g: RunningGatehouse,
    method: string,
    path: string,
    token: string,
  ): Promise<{ code: number; body: Record<string, unknown> }> {
    const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
    try {
      const res = await request(`${g.server.admin!.url}${path}`, {
        method: method as 'GET' | 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}` },
      })
      return { code: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
    } finally {
      await agent.close()
    }
  }

  test('a session relayed by replica B is killed through replica A', async () => {
    const e = env()
    const [a, b] = replicas as [RunningGatehouse, RunningGatehouse]
    const ns = `gw-replicas-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const token = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
    })
    const kubeconfig = b.kubeconfig({ token, name: `replica-b-${RUN}` })
    let out = ''
    const running = kubectl(
      '1.35',
      ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo on-replica-b; sleep 30'],
      { kubeconfig, timeoutMs: 30_000, onStdout: (d) => (out += d) },
    )
    // replica A sees it in the shared store, live on B
    let live: SessionRecord | undefined
    const deadline = Date.now() + 15_000
    while (!out.includes('on-replica-b') && Date.now() < deadline) await sleep(25)
    while (!live && Date.now() < deadline) {
      const list = await admin(a, 'GET', `/api/v1/sessions?namespace=${ns}&state=live`, token)
      live = (list.body['items'] as SessionRecord[])[0]
      if (!live) await sleep(100)
    }
    assert.ok(live, 'replica A never saw the live session')
    assert.equal(live.replica.split(':').slice(1).join(':'), b.dataDir)
    assert.equal(a.server.sessions.live().length, 0)

    const killed = await admin(a, 'POST', `/api/v1/sessions/${live.id}/kill`, token)
    assert.equal(killed.code, 202, JSON.stringify(killed.body))
    assert.equal(killed.body['via'], 'broadcast')
    const r = await running
    assert.notEqual(r.code, 0)
    assert.equal(r.stdout, 'on-replica-b\n')
    assert.match(r.stderr, /terminated by a Gatehouse administrator \(github:octo-org\/app\)/)

    let ended: SessionRecord | undefined
    while (Date.now() < deadline + 10_000) {
      ended = (await a.server.stores.sessions.getSession(live.id)) ?? undefined
      if (ended?.state !== 'live') break
      await sleep(100)
    }
    assert.equal(ended?.state, 'terminated')
    assert.equal(ended?.endReason, 'killed by github:octo-org/app')
    // and once over, a second kill says so
    const again = await admin(a, 'POST', `/api/v1/sessions/${live.id}/kill`, token)
    assert.equal(again.code, 409)
    assert.match(String(again.body['error']), /already ended \(terminated\)/)
  })
})
