// Just-in-time approvals with real kubectl through Gatehouse against the real API server: a held
// `kubectl create clusterrolebinding` waits until an approver approves through the admin API
// (or denies, or nobody decides in time); a retry-mode rule answers with the approval's id and
// lets the same request through exactly once after approval; the approval is bound to the exact
// request; the requester and machine identities cannot approve; every step is an audit record.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createHmac } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApprovalRecord } from '../../../src/approval/record.ts'
import type { AuditRecord } from '../../../src/audit/index.ts'
import { adminClient, ensureNamespace, kubectl } from '../../harness/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { CI_REPOSITORY, useGatewayEnv } from './env.ts'
import {
  adminApi,
  approvalIdIn,
  grantHumans,
  HUMANS,
  humanName,
  startApprovalGatehouse,
  waitForPending,
  named,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')
const run = promisify(execFile)

interface Receiver {
  url: string
  got: { headers: IncomingMessage['headers']; body: string }[]
  close(): void
}

/** A local webhook receiver that records what it gets. */
async function receiver(): Promise<Receiver> {
  const got: Receiver['got'] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    close: () => server.close(),
  }
}

describe('just-in-time approvals (kubectl through Gatehouse)', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  let bob: string
  let hook: Receiver
  let slack: Receiver
  const ns = `gw-appr-${RUN}`

  before(async () => {
    const e = env()
    await grantHumans(e)
    await ensureNamespace(adminClient(e.cluster), ns)
    hook = await receiver()
    slack = await receiver()
    writeFileSync(join(e.dir, 'webhook-secret'), 'e2e-webhook-secret\n')
    g = await startApprovalGatehouse(e, {
      approvals: {
        breakGlass: [{ group: 'on-call' }],
        notifications: {
          webhooks: [{ url: hook.url, secretFile: join(e.dir, 'webhook-secret') }],
          slack: [{ url: slack.url }],
        },
      },
    })
    bob = g.kubeconfig({ token: HUMANS.bob, name: 'bob' })
  })
  after(async () => {
    await g?.stop()
    hook?.close()
    slack?.close()
  })

  const bobKubectl = (args: string[], timeoutMs = 60_000): ReturnType<typeof kubectl> =>
    kubectl('1.35', args, { kubeconfig: bob, timeoutMs })

  async function stepRecords(id: string, events: string[]): Promise<AuditRecord[]> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const all = await g.server.audit.store.query({ identity: '*', limit: 5000 })
      const steps = all.filter((r) => r.approval?.id === id && r.id.startsWith(id))
      if (events.every((ev) => steps.some((s) => s.approval?.event === ev))) return steps
      if (Date.now() > deadline)
        throw new Error(`steps of ${id}: ${steps.map((s) => s.approval?.event).join(', ')}`)
      await sleep(100)
    }
  }

  test('a held create clusterrolebinding completes once an approver approves through the admin API', async () => {
    const name = `e2e-appr-${RUN}-held`
    let done = false
    const held = bobKubectl([
      'create',
      'clusterrolebinding',
      name,
      '--clusterrole=view',
      '--user=nobody',
    ]).finally(() => (done = true))
    const a = await waitForPending(
      g,
      (x) =>
        x.request.summary.includes('clusterrolebindings') &&
        x.requester.name === humanName('bob') &&
        named(name)(x),
    )
    assert.equal(a.requester.name, 'human:bob')
    // cluster-scoped; kubectl sends protobuf, decoded by the dry run, which names the object
    assert.equal(
      a.request.summary,
      `create clusterrolebindings.rbac.authorization.k8s.io cluster-wide named "${name}"`,
    )
    assert.equal(a.body?.shownAs, 'dry-run')
    assert.deepEqual(a.highlights?.[0], {
      field: 'roleRef',
      value: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    })
    assert.deepEqual(a.highlights?.[1]?.value, [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'nobody' },
    ])
    assert.equal(a.rule.rule, 'cluster-admin-bindings')
    assert.equal(a.settings.wait, 'hold')
    assert.match(a.request.bodySha256, /^[0-9a-f]{64}$/)
    // the dry run: what the API server would create, as bob
    assert.ok(a.dryRun && 'code' in a.dryRun, JSON.stringify(a.dryRun))
    assert.equal(a.dryRun.code, 201)
    assert.match(a.dryRun.text, new RegExp(`"name": "${name}"`))
    await sleep(1500)
    assert.equal(done, false, 'kubectl finished before any approval')
    const exists = await adminClient(env().cluster)
      .raw('GET', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`)
      .then((r) => r.statusCode)
    assert.equal(exists, 404, 'the object was created before the approval')

    const approved = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/approve`, HUMANS.alice, {
      comment: 'looks right',
    })
    assert.equal(approved.code, 200, JSON.stringify(approved.body))
    assert.equal(approved.body['state'], 'approved')
    const r = await held
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      new RegExp(`clusterrolebinding.rbac.authorization.k8s.io/${name} created`),
    )

    const final = await adminApi(g, 'GET', `/api/v1/approvals/${a.id}`, HUMANS.alice)
    assert.equal(final.body['state'], 'used')
    const steps = await stepRecords(a.id, ['requested', 'approved', 'used'])
    const approvedStep = steps.find((s) => s.approval?.event === 'approved')!
    assert.equal(approvedStep.identity?.name, 'human:alice')
    assert.equal(approvedStep.approval?.comment, 'looks right')
    const used = steps.find((s) => s.approval?.event === 'used')!
    // in hold mode the request that asked is the one that passed: its record links the approval
    assert.equal(used.approval?.requestId, a.requestId)
    let passed = await g.server.audit.store.get(a.requestId)
    // the request's own record is written by the batching writer just after it ended
    for (let i = 0; i < 100 && !passed; i++) {
      await sleep(50)
      passed = await g.server.audit.store.get(a.requestId)
    }
    assert.equal(passed?.approval?.id, a.id)
    assert.equal(passed?.response.code, 201)
  })

  for (const [proto, env] of [
    ['HTTP/2', {}],
    ['HTTP/1.1', { DISABLE_HTTP2: '1' }],
  ] as const)
    test(`a held request whose client went away (${proto}) never spends the approval; its retry does`, async () => {
      const name = `e2e-appr-${RUN}-gone-${proto.replace(/\W/g, '')}`
      const args = ['create', 'clusterrolebinding', name, '--clusterrole=view', '--user=nobody']
      const giveUp = new AbortController()
      const held = kubectl('1.35', args, {
        kubeconfig: bob,
        timeoutMs: 60_000,
        env,
        signal: giveUp.signal,
      })
      const a = await waitForPending(g, named(name))
      giveUp.abort()
      await held
      await sleep(500)
      const approved = await adminApi(
        g,
        'POST',
        `/api/v1/approvals/${a.id}/approve`,
        HUMANS.alice,
        {},
      )
      assert.equal(approved.code, 200, JSON.stringify(approved.body))
      await sleep(1500)
      assert.equal((await g.server.approvals.get(a.id))?.state, 'approved', 'nobody spent it')
      const retry = await bobKubectl(args)
      assert.equal(retry.code, 0, retry.stderr)
      const used = (await g.server.approvals.get(a.id))!
      assert.equal(used.state, 'used')
      assert.notEqual(
        used.uses[0]?.requestId,
        a.requestId,
        'spent by the retry, not by the gone request',
      )
    })

  test('a denial ends the held request with Forbidden quoting the comment; the requester and CI cannot decide', async () => {
    const name = `e2e-appr-${RUN}-denied`
    // from a manifest this time: kubectl prints the Status reason (Forbidden) for `create -f`
    const manifest = JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'nobody' }],
    })
    const held = kubectl('1.35', ['create', '-f', '-'], {
      kubeconfig: bob,
      timeoutMs: 60_000,
      stdin: manifest,
    })
    const a = await waitForPending(g, named(name))

    const own = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/approve`, HUMANS.bob, {
      comment: 'me, myself',
    })
    assert.equal(own.code, 403)
    assert.match(String(own.body['error']), /separation of duties/)
    const ci = await env().issuer.mintGitHubActions({ repository: CI_REPOSITORY })
    const machine = await adminApi(g, 'GET', `/api/v1/approvals/${a.id}`, ci)
    assert.equal(machine.code, 404, 'a CI identity is no approver and sees nothing')
    const machineDecides = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/approve`, ci, {})
    assert.equal(machineDecides.code, 404, 'nor can it decide, or learn the state by trying')
    const outsider = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/approve`, HUMANS.dave, {})
    assert.equal(outsider.code, 404, 'no approver, so it is not there for them')

    const denied = await adminApi(g, 'POST', `/api/v1/approvals/${a.id}/deny`, HUMANS.carol, {
      comment: 'not during the freeze',
    })
    assert.equal(denied.code, 200, JSON.stringify(denied.body))
    const r = await held
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Error from server \(Forbidden\)/)
    assert.match(r.stderr, /denied by human:carol: "not during the freeze"/)
    await stepRecords(a.id, ['requested', 'denied'])
  })

  test('an approval nobody decides expires and the held request ends with a clear message', async () => {
    const t0 = Date.now()
    const r = await bobKubectl([
      'create',
      'clusterrole',
      `e2e-appr-${RUN}-expire`,
      '--verb=get',
      '--resource=pods',
    ])
    assert.notEqual(r.code, 0)
    assert.ok(Date.now() - t0 >= 2500, 'it was held until the expiry')
    assert.match(r.stderr, /Forbidden/)
    assert.match(r.stderr, /approval [0-9a-f-]{36} expired at .* without a decision/)
    const id = /approval ([0-9a-f-]{36}) expired/.exec(r.stderr)![1]!
    const a = (await g.server.approvals.get(id))!
    assert.equal(a.state, 'expired')
    await stepRecords(id, ['requested', 'expired'])
  })

  test('retry mode: the first attempt names the approval, the retry after approval passes exactly once', async () => {
    const args = ['-n', ns, 'create', 'configmap', `cm-${RUN}`, '--from-literal=k=v']
    const first = await bobKubectl(args)
    assert.notEqual(first.code, 0)
    const id = approvalIdIn(first.stderr)
    assert.match(first.stderr, new RegExp(`approve at ${g.server.admin!.url}/approvals/${id}`))
    const again = await bobKubectl(args)
    assert.equal(
      approvalIdIn(again.stderr),
      id,
      'a retry before the decision names the same approval',
    )

    const ok = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {})
    assert.equal(ok.code, 200, JSON.stringify(ok.body))
    const second = await bobKubectl(args)
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stdout, /configmap\/cm-.* created/)

    // one use only: the same request again (after deleting the object) asks anew
    assert.equal((await bobKubectl(['-n', ns, 'delete', 'configmap', `cm-${RUN}`])).code, 0)
    const third = await bobKubectl(args)
    assert.notEqual(third.code, 0)
    assert.notEqual(approvalIdIn(third.stderr), id)
  })

  test('an approval covers only its exact request: another body, name or namespace is held again', async () => {
    const other = `gw-appr-${RUN}-b`
    await ensureNamespace(adminClient(env().cluster), other)
    const base = ['create', 'configmap', `bound-${RUN}`]
    const first = await bobKubectl(['-n', ns, ...base, '--from-literal=k=v'])
    const id = approvalIdIn(first.stderr)
    assert.equal(
      (await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {})).code,
      200,
    )

    const variants = [
      ['-n', ns, ...base, '--from-literal=k=changed'], // body
      ['-n', ns, 'create', 'configmap', `bound-${RUN}-x`, '--from-literal=k=v'], // name
      ['-n', other, ...base, '--from-literal=k=v'], // namespace
    ]
    const ids = new Set([id])
    for (const v of variants) {
      const r = await bobKubectl(v)
      assert.notEqual(r.code, 0, `${v.join(' ')} passed on another request's approval`)
      ids.add(approvalIdIn(r.stderr))
    }
    assert.equal(ids.size, 4, 'each variant got an approval of its own')
    // and the approved request itself still passes
    const exact = await bobKubectl(['-n', ns, ...base, '--from-literal=k=v'])
    assert.equal(exact.code, 0, exact.stderr)
  })

  test('a quorum of two needs two distinct approvers', async () => {
    const args = ['-n', ns, 'create', 'role', `r-${RUN}`, '--verb=get', '--resource=pods']
    const id = approvalIdIn((await bobKubectl(args)).stderr)
    const one = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {})
    assert.equal(one.body['state'], 'pending')
    const twice = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {})
    assert.equal(twice.code, 409)
    assert.equal(approvalIdIn((await bobKubectl(args)).stderr), id, 'still pending after one')
    const two = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.carol, {})
    assert.equal(two.body['state'], 'approved')
    assert.equal((await bobKubectl(args)).code, 0)
  })

  test('break-glass approves alone, flagged, and is notified loudly; every step is notified', async () => {
    const args = ['-n', ns, 'create', 'role', `bg-${RUN}`, '--verb=get', '--resource=pods']
    const id = approvalIdIn((await bobKubectl(args)).stderr)
    const r = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.breaker, {
      comment: 'outage INC-9',
    })
    assert.equal(r.code, 200, JSON.stringify(r.body))
    assert.equal(r.body['state'], 'approved', 'quorum 2, but break-glass approves alone')
    assert.equal(r.body['breakGlass'], true)
    assert.equal((await bobKubectl(args)).code, 0)

    const deadline = Date.now() + 10_000
    const events = (): { type: string; breakGlass: boolean; approval: { id: string } }[] =>
      hook.got
        .map(
          (x) =>
            JSON.parse(x.body) as { type: string; breakGlass: boolean; approval: { id: string } },
        )
        .filter((x) => x.approval.id === id)
    while (events().length < 2 && Date.now() < deadline) await sleep(50)
    assert.deepEqual(
      events().map((x) => x.type),
      ['gatehouse.approval.requested', 'gatehouse.approval.approved'],
    )
    assert.equal(events()[1]!.breakGlass, true)
    const signed = hook.got.find((x) => x.body.includes(id))!
    const ts = String(signed.headers['x-gatehouse-timestamp'])
    assert.equal(
      signed.headers['x-gatehouse-signature'],
      `sha256=${createHmac('sha256', 'e2e-webhook-secret').update(`${ts}.${signed.body}`).digest('hex')}`,
    )
    while (!slack.got.some((x) => x.body.includes('BREAK-GLASS')) && Date.now() < deadline)
      await sleep(50)
    const text = slack.got
      .map((x) => (JSON.parse(x.body) as { text: string }).text)
      .find((t) => t.includes('BREAK-GLASS'))
    assert.ok(text, 'no loud Slack message')
    assert.match(text, new RegExp(`${g.server.admin!.url}/approvals/${id}`))
    await stepRecords(id, ['requested', 'notified', 'approved', 'used'])
  })

  test('approvers see CI provenance and the justification (a token claim or a header)', async () => {
    const e = env()
    const ci = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      justification: 'release 1.2 needs it',
    })
    const ciConfig = g.kubeconfig({ token: ci, name: 'ci-justified' })
    const r = await kubectl(
      '1.35',
      ['-n', ns, 'create', 'configmap', `ci-${RUN}`, '--from-literal=k=v'],
      {
        kubeconfig: ciConfig,
        timeoutMs: 30_000,
      },
    )
    const a = (await g.server.approvals.get(approvalIdIn(r.stderr)))!
    assert.equal(a.justification, 'release 1.2 needs it')
    assert.deepEqual(a.requester.extra['gatehouse.dev/repository'], [CI_REPOSITORY])
    assert.deepEqual(a.requester.extra['gatehouse.dev/run-id'], ['987654321'])

    // a header wins over the claim; the body is shown masked
    const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
    try {
      const res = await request(`${g.url}/api/v1/namespaces/${ns}/configmaps`, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${HUMANS.bob}`,
          'content-type': 'application/json',
          'x-gatehouse-justification': 'INC-1234: rotate the key',
        },
        body: JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `hdr-${RUN}` },
          data: { AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
        }),
      })
      const status = (await res.body.json()) as { message: string }
      assert.equal(res.statusCode, 403)
      const b = (await g.server.approvals.get(approvalIdIn(status.message)))!
      assert.equal(b.justification, 'INC-1234: rotate the key')
      assert.ok(b.body && b.body.masked > 0, JSON.stringify(b.body))
      assert.doesNotMatch(b.body.text, /wJalrXUtnFEMI/)
    } finally {
      await agent.close()
    }
  })

  test('gatehouse approvals list, show, approve and deny', async () => {
    const args = ['-n', ns, 'create', 'configmap', `cli-${RUN}`, '--from-literal=k=v']
    const id = approvalIdIn((await bobKubectl(args)).stderr)
    const list = await run(process.execPath, [
      CLI,
      'approvals',
      'list',
      '--config',
      g.configFile,
      '--state',
      'pending',
    ])
    assert.match(list.stdout, /^CREATED\s+ID\s+REQUESTER\s+.*REQUEST$/m)
    assert.match(
      list.stdout,
      new RegExp(
        `${id} +human:bob .*pending .*create configmaps in namespace "${ns}" named "cli-${RUN}"`,
      ),
    )
    const show = JSON.parse(
      (await run(process.execPath, [CLI, 'approvals', 'show', '--config', g.configFile, id]))
        .stdout,
    ) as ApprovalRecord
    assert.equal(show.id, id)
    assert.equal(show.request.namespace, ns)

    const tokenEnv = { ...process.env, APPROVER_TOKEN: HUMANS.alice }
    const denied = await run(
      process.execPath,
      [
        CLI,
        'approvals',
        'deny',
        '--config',
        g.configFile,
        id,
        '--comment',
        'wrong namespace',
        '--token-env',
        'APPROVER_TOKEN',
        '--admin-url',
        g.server.admin!.url,
      ],
      { env: tokenEnv },
    )
    assert.match(denied.stdout, new RegExp(`approval ${id}: denied \\(now denied\\)`))
    const r = await bobKubectl(args)
    assert.notEqual(
      approvalIdIn(r.stderr),
      id,
      'a denied approval is not reused: a new one is asked',
    )
    const id2 = approvalIdIn(r.stderr)
    const approved = await run(
      process.execPath,
      [
        CLI,
        'approvals',
        'approve',
        '--config',
        g.configFile,
        id2,
        '--token-env',
        'APPROVER_TOKEN',
        '--admin-url',
        g.server.admin!.url,
      ],
      { env: tokenEnv },
    )
    assert.match(approved.stdout, /approved \(now approved\)/)
    assert.equal((await bobKubectl(args)).code, 0)
  })
})
