// Approvals outlive a Gatehouse process: a pending approval survives a restart (the audit store
// keeps it) and the retry after approval passes; with two replicas on one PostgreSQL, approving
// through one releases the request held by the other (LISTEN/NOTIFY: polling is set too slow to
// be what releases it).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { adminClient, ensureNamespace, kubectl } from '../../harness/index.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { useGatewayEnv } from './env.ts'
import {
  adminApi,
  approvalIdIn,
  grantHumans,
  HUMANS,
  startApprovalGatehouse,
  waitForPending,
  named,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `gh_e2e_approvals_${process.pid}`

describe('approvals across restarts and replicas', () => {
  const env = useGatewayEnv()
  const ns = `gw-appr-r-${RUN}`
  const started: RunningGatehouse[] = []
  const start = async (
    opts: Parameters<typeof startApprovalGatehouse>[1],
  ): Promise<RunningGatehouse> => {
    const g = await startApprovalGatehouse(env(), opts)
    started.push(g)
    return g
  }
  const stop = async (g: RunningGatehouse): Promise<void> => {
    started.splice(started.indexOf(g), 1)
    await g.stop()
  }

  before(async () => {
    await grantHumans(env())
    await ensureNamespace(adminClient(env().cluster), ns)
  })
  after(async () => {
    for (const g of started) await g.stop()
    const c = new pg.Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await c.end()
  })

  test('a pending approval survives a restart; the retry after approval passes', async () => {
    const store = { sqlite: { path: join(env().dir, `approvals-restart-${RUN}.db`) } }
    const first = await start({ store })
    const bob = (g: RunningGatehouse): string => g.kubeconfig({ token: HUMANS.bob, name: 'bob' })
    const retryArgs = ['-n', ns, 'create', 'configmap', `restart-${RUN}`, '--from-literal=k=v']
    const refused = await kubectl('1.35', retryArgs, { kubeconfig: bob(first), timeoutMs: 30_000 })
    const retryId = approvalIdIn(refused.stderr)
    // and a held request, ended by the stop: its approval stays pending too
    const crb = `e2e-appr-${RUN}-restart`
    const heldArgs = ['create', 'clusterrolebinding', crb, '--clusterrole=view', '--user=nobody']
    const held = kubectl('1.35', heldArgs, { kubeconfig: bob(first), timeoutMs: 30_000 })
    const heldApproval = await waitForPending(first, named(crb))
    await stop(first)
    const ended = await held
    assert.notEqual(ended.code, 0)
    assert.match(ended.stderr, new RegExp(`approval ${heldApproval.id} is pending`))

    const second = await start({ store })
    for (const id of [retryId, heldApproval.id]) {
      const a = await adminApi(second, 'GET', `/api/v1/approvals/${id}`, HUMANS.alice)
      assert.equal(a.code, 200)
      assert.equal(a.body['state'], 'pending')
      const ok = await adminApi(second, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {
        comment: 'after the restart',
      })
      assert.equal(ok.code, 200, JSON.stringify(ok.body))
    }
    const retried = await kubectl('1.35', retryArgs, { kubeconfig: bob(second), timeoutMs: 30_000 })
    assert.equal(retried.code, 0, retried.stderr)
    const t0 = Date.now()
    const heldAgain = await kubectl('1.35', heldArgs, {
      kubeconfig: bob(second),
      timeoutMs: 30_000,
    })
    assert.equal(heldAgain.code, 0, heldAgain.stderr)
    assert.ok(Date.now() - t0 < 10_000, 'the approved request was not held again')
    await stop(second)
  })

  test('two replicas on one PostgreSQL: approving on A releases the hold on B', async () => {
    const store = { postgres: { url: PG_URL, schema: SCHEMA } }
    // polling every 10 minutes: only the notification can release the hold in time
    const a = await start({ store, approvals: { pollIntervalMs: 600_000 } })
    const b = await start({ store, approvals: { pollIntervalMs: 600_000 } })
    const crb = `e2e-appr-${RUN}-replicas`
    let done = false
    const held = kubectl(
      '1.35',
      ['create', 'clusterrolebinding', crb, '--clusterrole=view', '--user=nobody'],
      { kubeconfig: b.kubeconfig({ token: HUMANS.bob, name: 'bob-b' }), timeoutMs: 60_000 },
    ).finally(() => (done = true))
    const pending = await waitForPending(a, named(crb))
    assert.equal(done, false)
    const t0 = Date.now()
    const ok = await adminApi(a, 'POST', `/api/v1/approvals/${pending.id}/approve`, HUMANS.carol, {
      comment: 'approved on replica A',
    })
    assert.equal(ok.code, 200, JSON.stringify(ok.body))
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /created/)
    assert.ok(Date.now() - t0 < 15_000, `released after ${Date.now() - t0} ms`)
    const final = await adminApi(a, 'GET', `/api/v1/approvals/${pending.id}`, HUMANS.alice)
    assert.equal(final.body['state'], 'used')
  })
})
