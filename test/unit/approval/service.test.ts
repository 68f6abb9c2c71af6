// The approval service on a real SQLite store with in-process request contexts: a one-time
// approval lets exactly one of two identical held requests through (the other asks anew), a
// client that goes away leaves the approval pending for its retry, Gatehouse stopping ends
// holds with the pending approval's id, and an approval expires on time. Also: a request that
// differs only in a query parameter waits on an approval of its own, one requester cannot have
// more than maxPendingPerIdentity pending (429 with Retry-After), a protobuf body nobody can
// decode is refused rather than shown in part, and listings are queried by approver set.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApprovalService } from '../../../src/approval/service.ts'
import { GatewayError } from '../../../src/errors/index.ts'
import type { AuditRecord } from '../../../src/audit/index.ts'
import type { Identity } from '../../../src/authn/index.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import type { HeldRequest } from '../../../src/approval/request.ts'
import type { ApprovalAuditLink } from '../../../src/request/facts.ts'
import { sqliteStores } from '../../../src/stores.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const stores = sqliteStores(join(tempDir('gh-appr-svc-'), 'audit.db'))
const written: AuditRecord[] = []
const service = new ApprovalService({
  store: stores.approvals,
  audit: { write: (r) => written.push(r) },
  logger: silentLogger(),
  config: { pollIntervalMs: 50, maxPendingPerIdentity: 5 },
  approvers: { approverIssuers: ['https://idp.example'] },
  approveUrl: () => 'https://admin.example',
})
after(async () => {
  await service.close()
  await stores.close()
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
  issuer: 'https://idp.example',
  claims: {},
  extra: {},
}
let n = 0

/** A held request as the hold stage makes it; `goAway()` is its client leaving. */
type Held = HeldRequest & { readonly id: string; goAway(): void; approval?: ApprovalAuditLink }

function context(
  body: string,
  opts: {
    wait?: 'hold' | 'retry'
    expiresIn?: number
    target?: string
    who?: Identity
    contentType?: string
    approvers?: { group: string }[]
  } = {},
): Held {
  const target = opts.target ?? '/api/v1/namespaces/prod/configmaps'
  const info = parseRequestInfo('POST', target)
  assert.ok(info.ok)
  const id = `req-${++n}`
  const gone = new AbortController()
  const held: Held = {
    id,
    goAway: () => gone.abort(),
    gone: gone.signal,
    link: (approval) => (held.approval = approval),
    request: {
      id,
      receivedAt: Date.now(),
      method: 'POST',
      target,
      headers: { 'content-type': opts.contentType ?? 'application/json' },
      sourceAddress: '127.0.0.1',
      cluster: 'prod',
      info: info.info,
      identity: opts.who ?? bob,
      body: Buffer.from(body),
      decision: {
        action: 'approve',
        policy: 'p',
        rule: 'r',
        obligations: {
          audit: 'metadata',
          approval: {
            approvers: opts.approvers ?? [{ group: 'sre' }],
            quorum: 1,
            expiresIn: opts.expiresIn ?? 600,
            wait: opts.wait ?? 'hold',
          },
        },
      },
    },
  }
  return held
}

async function pendingFor(ctx: Held): Promise<string> {
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
  before(() => stores.migrate())

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
    assert.equal(r.approval.request.summary, 'create configmaps in namespace "prod" named "twin"')
    assert.deepEqual(r.approval.highlights, [])
    assert.equal(r.approval.body?.shownAs, 'decoded')
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
    ctx.goAway()
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

  it('gives a request that differs only in a query parameter an approval of its own', async () => {
    const body = '{"metadata":{"name":"dry"}}'
    const plain = context(body, { wait: 'retry' })
    const dry = context(body, {
      wait: 'retry',
      target: '/api/v1/namespaces/prod/configmaps?dryRun=All',
    })
    const idOf = async (ctx: Held): Promise<string> => {
      const e = await service.hold(ctx).catch((x: Error) => x)
      assert.ok(e instanceof Error)
      return /approval (\S+) is pending/.exec(e.message)![1]!
    }
    const a = await idOf(dry)
    const b = await idOf(plain)
    assert.notEqual(a, b)
    const shown = (await service.get(a))!
    assert.match(shown.request.summary, /\(dry run\)$/)
    assert.deepEqual(shown.bound?.query, [['dryRun', ['All']]])
    await service.decide(a, { who: alice, decision: 'approve', comment: '', via: 'api' })
    const again = await idOf(context(body, { wait: 'retry' }))
    assert.equal(again, b, 'the plain request still waits on its own approval, not the dry run')
  })

  it('refuses more pending approvals than maxPendingPerIdentity with 429 and Retry-After', async () => {
    const carol: Identity = { ...bob, name: 'human:carol' }
    for (let i = 0; i < 5; i++) {
      const e = await service
        .hold(context(`{"metadata":{"name":"flood-${i}"}}`, { wait: 'retry', who: carol }))
        .catch((x: Error) => x)
      assert.match(String(e), /is pending/)
    }
    const e = await service
      .hold(context('{"metadata":{"name":"flood-5"}}', { wait: 'retry', who: carol }))
      .catch((x: unknown) => x)
    assert.ok(e instanceof GatewayError)
    assert.equal(e.code, 'GW_APPROVAL_LIMIT')
    assert.equal(e.status, 429)
    assert.ok(e.retryAfterSeconds! >= 1 && e.retryAfterSeconds! <= 30)
    assert.match(e.message, /human:carol already has 5 pending approvals/)
    // the same request again finds its pending approval: no new one, no refusal
    const same = await service
      .hold(context('{"metadata":{"name":"flood-0"}}', { wait: 'retry', who: carol }))
      .catch((x: Error) => x)
    assert.match(String(same), /is pending/)
  })

  it('refuses an approval of a protobuf body it cannot show (no dry run to decode it)', async () => {
    const ctx = context('k8s\u0000\n\u0002v1\u0012\u0009ConfigMap', {
      contentType: 'application/vnd.kubernetes.protobuf',
      wait: 'retry',
    })
    const e = await service.hold(ctx).catch((x: unknown) => x)
    assert.ok(e instanceof GatewayError)
    assert.equal(e.code, 'GW_APPROVAL_UNSHOWABLE')
    assert.match(
      e.message,
      /cannot show approvers this application\/vnd\.kubernetes\.protobuf body/,
    )
    const left = await service.list({ binding: undefined, limit: 1000 })
    assert.ok(!left.some((a) => a.requestId === ctx.id), 'no approval was created')
  })

  it('lists what each person may see from the store, however many other approvals there are', async () => {
    const oncall: Identity = { ...alice, name: 'human:oncall', groups: ['db-oncall'] }
    const old = context('{"metadata":{"name":"old-db"}}', {
      wait: 'retry',
      who: { ...bob, name: 'human:dana' },
      approvers: [{ group: 'db-oncall' }],
    })
    await service.hold(old).catch(() => undefined)
    for (let i = 0; i < 30; i++)
      await service
        .hold(
          context(`{"metadata":{"name":"noise-${i}"}}`, {
            wait: 'retry',
            who: { ...bob, name: `human:noise-${i % 6}` },
          }),
        )
        .catch(() => undefined)
    const page = await service.page(oncall, false, { state: 'pending', limit: 5 })
    assert.equal(page.total, 1)
    assert.deepEqual(
      page.items.map((a) => a.requestId),
      [old.id],
    )
    const sre = await service.page(alice, false, { state: 'pending', limit: 5 })
    assert.equal(sre.items.length, 5)
    assert.ok(sre.total >= 30)
    assert.ok(!sre.items.some((a) => a.requestId === old.id), 'sre cannot see the db approval')
    const admin = await service.page(oncall, true, { state: 'pending', limit: 1, offset: 1 })
    assert.equal(admin.items.length, 1)
    assert.ok(admin.total >= 31)
  })

  it("answers kubectl's SPDY retry of a denied WebSocket exec with the same denial", async () => {
    const target = '/api/v1/namespaces/prod/pods/box/exec?command=date&container=app&stdout=true'
    const exec = (method: 'GET' | 'POST'): Held => {
      const ctx = context('', { wait: 'retry', target })
      const info = parseRequestInfo(method, target)
      assert.ok(info.ok)
      const request = { ...ctx.request, method, headers: {}, info: info.info, body: undefined }
      return { ...ctx, request }
    }
    const e = await service.hold(exec('GET')).catch((x: Error) => x)
    const id = /approval (\S+) is pending/.exec(String(e))![1]!
    assert.match(String(await service.hold(exec('POST')).catch((x: Error) => x)), new RegExp(id))
    await service.decide(id, { who: alice, decision: 'deny', comment: 'no', via: 'api' })
    const retried = await service.hold(exec('POST')).catch((x: Error) => x)
    assert.match(String(retried), new RegExp(`approval ${id} was denied by human:alice: "no"`))
    // the same transport again is a new request for approval, as after any denial
    const again = await service.hold(exec('GET')).catch((x: Error) => x)
    assert.match(String(again), /is pending/)
    assert.doesNotMatch(String(again), new RegExp(id))
  })
})
