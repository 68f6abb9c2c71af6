// A held kubectl request outlives every timeout on the way: Gatehouse's header timeout (60 s)
// and keep-alive timeout (65 s) do not apply to a request whose headers arrived, and kubectl
// has no request timeout by default. Held for 70 s, then approved: the command completes.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { kubectl } from '../../harness/index.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { useGatewayEnv } from './env.ts'
import {
  adminApi,
  grantHumans,
  HUMANS,
  startApprovalGatehouse,
  waitForPending,
  named,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const HELD_MS = 70_000

describe('a long hold', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  before(async () => {
    await grantHumans(env())
    g = await startApprovalGatehouse(env())
  })
  after(() => g?.stop())

  test(`kubectl held for ${HELD_MS / 1000} s completes once approved`, async () => {
    const name = `e2e-appr-${RUN}-long`
    let done = false
    const held = kubectl(
      '1.35',
      ['create', 'clusterrolebinding', name, '--clusterrole=view', '--user=nobody'],
      { kubeconfig: g.kubeconfig({ token: HUMANS.bob, name: 'bob' }), timeoutMs: HELD_MS + 60_000 },
    ).finally(() => (done = true))
    const a = await waitForPending(g, named(name))
    await sleep(HELD_MS)
    assert.equal(done, false, 'the held request ended before any decision')
    const ok = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/approve`, HUMANS.alice, {})
    assert.equal(ok.code, 200)
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`${name} created`))
  })
})
