// The approval service on a real SQLite store with in-process request contexts: a one-time
// approval lets exactly one of two identical held requests through (the other asks anew), a
// client that goes away leaves the approval pending for its retry, Gatehouse stopping ends
// holds with the pending approval's id, and an approval expires on time.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdtempSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApprovalService } from '../../../src/approval/service.ts'
import { openSqliteStore } from '../../../src/audit/index.ts'
import type { AuditRecord } from '../../../src/audit/index.ts'
import type { Identity } from '../../../src/authn/index.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import type { RequestContext } from '../../../src/pipeline/context.ts'
import type { UpstreamCluster } from '../../../src/upstream/cluster.ts'

const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'gh-appr-svc-')), 'audit.db'))
const written: AuditRecord[] = []
const service = new ApprovalService({
  store,
  audit: { write: (r) => written.push(r) },
  logger: silentLogger(),
  config: { pollIntervalMs: 50 },
  approveUrl: () => 'https://admin.example',
})
after(async () => {
  await service.close()
  await store.close()
})

const bob: Identity = {
  name: 'human:bob',
  groups: ['dev'],
  method: 'static',
  claims: {},
  extra: {},
}
const alice: Identity = {
  name: 'human:alice',
  groups: ['sre'],
  method: 'oidc',
  claims: {},
  extra: {},
}
let n = 0

function context(
  body: string,
  opts: { wait?: 'hold' | 'retry'; expiresIn?: number } = {},
): RequestContext & { res: ServerResponse } {
  const info = parseRequestInfo('POST', '/api/v1/namespaces/prod/configmaps')
  assert.ok(info.ok)
  const res = new EventEmitter() as unknown as ServerResponse
  return {
    id: `req-${++n}`,
    receivedAt: Date.now(),
    req: {
      method: 'POST',
      url: '/api/v1/namespaces/prod/configmaps',
      headers: { 'content-type': 'application/json' },
      socket: { destroyed: false },
    } as unknown as IncomingMessage,
    res,
    upgrade: undefined,
    sourceAddress: '127.0.0.1',
    timings: {},
    warnings: [],
    signal: new AbortController().signal,
    cleanups: [],
    cluster: { name: 'prod' } as UpstreamCluster,
    upstreamPath: '/api/v1/namespaces/prod/configmaps',
    requestInfo: info.info,
    identity: bob,
    requestBody: Buffer.from(body),
    decision: {
      action: 'approve',
      policy: 'p',
      rule: 'r',
      obligations: {
        audit: 'metadata',
        approval: {
          approvers: [{ group: 'sre' }],
          quorum: 1,
          expiresIn: opts.expiresIn ?? 600,
          wait: opts.wait ?? 'hold',
        },
      },
    },
  }
}

async function pendingFor(ctx: RequestContext): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const mine = (await service.list({ state: 'pending', limit: 100 })).find(
      (x) => x.requestId === ctx.id,
    )
    if (mine) return mine.id
    await sleep(10)
  }
  throw new Error('no pending approval')
}

describe('ApprovalService', () => {
  before(() => store.migrate())

  it('lets exactly one of two identical held requests use a one-time approval', async () => {
    const body = '{"metadata":{"name":"twin"}}'
    const first = context(body)
    const second = context(body)
    const outcomes: string[] = []
    const settle = (p: Promise<void>): Promise<unknown> =>
      p.then(
        () => outcomes.push('passed'),
        (e: Error) => outcomes.push(e.message),
      )
    const p1 = settle(service.hold(first))
    const id = await pendingFor(first)
    const p2 = settle(service.hold(second))
    await sleep(100)
    const r = await service.decide(id, { who: alice, decision: 'approve', comment: '', via: 'api' })
    assert.ok('approval' in r)
    assert.equal(r.approval.request.summary, 'create configmaps "twin" in namespace "prod"')
    for (let i = 0; i < 100 && outcomes.length === 0; i++) await sleep(10)
    await sleep(200)
    assert.deepEqual(outcomes, ['passed'], 'one passed, the twin is held again')
    assert.equal((await service.get(id))?.state, 'used')
    // the twin waits on an approval of its own
    const fresh = (await service.list({ state: 'pending', limit: 100 })).filter(
      (a) => a.request.bodySha256 === r.approval.request.bodySha256,
    )
    assert.equal(fresh.length, 1)
    assert.notEqual(fresh[0]!.id, id)
    await service.decide(fresh[0]!.id, {
      who: alice,
      decision: 'deny',
      comment: 'one is enough',
      via: 'api',
    })
    await Promise.all([p1, p2])
    assert.equal(outcomes.length, 2)
    assert.match(outcomes[1]!, /^approval .* was denied by human:alice: "one is enough"$/)
  })

  it('keeps the approval pending when the client goes away; the retry waits for it', async () => {
    const ctx = context('{"metadata":{"name":"gone"}}')
    const held = service.hold(ctx).catch((e: Error) => e)
    const id = await pendingFor(ctx)
    ctx.res.emit('close')
    const e = await held
    assert.ok(e instanceof Error)
    assert.match(e.message, /the client went away; approval .* stays pending/)
    assert.equal((await service.get(id))?.state, 'pending')
    const retry = context('{"metadata":{"name":"gone"}}', { wait: 'retry' })
    await assert.rejects(service.hold(retry), new RegExp(`approval ${id} is pending`))
    await service.decide(id, { who: alice, decision: 'approve', comment: 'ok', via: 'api' })
    await service.hold(context('{"metadata":{"name":"gone"}}'))
    assert.equal((await service.get(id))?.state, 'used')
  })

  it('expires an approval nobody decides', async () => {
    const ctx = context('{"metadata":{"name":"slow"}}', { expiresIn: 1 })
    const t0 = Date.now()
    await assert.rejects(service.hold(ctx), /expired at .* without a decision/)
    assert.ok(Date.now() - t0 >= 900)
    const steps = written
      .filter((r) => r.approval?.requestId === ctx.id)
      .map((r) => r.approval?.event)
    assert.deepEqual(steps, ['requested', 'expired'])
  })

  it('ends holds with the pending approval when Gatehouse stops', async () => {
    const ctx = context('{"metadata":{"name":"stop"}}')
    const held = service.hold(ctx).catch((e: Error) => e)
    const id = await pendingFor(ctx)
    service.shutdown()
    const e = await held
    assert.ok(e instanceof Error)
    assert.match(
      e.message,
      new RegExp(`approval ${id} is pending .* approve at https://admin.example/approvals/${id}`),
    )
    assert.equal((await service.get(id))?.state, 'pending')
  })
})
