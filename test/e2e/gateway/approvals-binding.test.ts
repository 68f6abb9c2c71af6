// An approval covers exactly one request as the API server will execute it (issue 17 item 1),
// with real kubectl through Gatehouse against the real API server and the fake kubelet: each
// swap (exec command, container and TTY; proxy subpath and method; dryRun; a deletecollection's
// selector; apply's force) waits under an approval of its own and never runs on another's, and
// the API server's audit log and the kubelet show that only what was approved ran.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApprovalRecord } from '../../../src/approval/record.ts'
import { adminClient, kubectl } from '../../harness/index.ts'
import { readAuditEvents, type AuditEvent } from '../../harness/audit-log.ts'
import { kubectlPath } from '../../harness/binaries.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { kubeletRequestsFor, namespaceWithPods, Terminal } from '../support.ts'
import { useGatewayEnv } from './env.ts'
import {
  adminApi,
  approvalIdIn,
  grantHumans,
  HUMANS,
  startApprovalGatehouse,
  waitForPending,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const NS = `gw-bind-${RUN}`

const BINDING_POLICY = `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-binding
spec:
  subjects:
    - name: '*'
  rules:
    - name: exec
      action: approve
      verbs: [create]
      resources: [pods/exec]
      namespaces: ['gw-bind-*']
      approval: { approvers: [{ group: approvers }], wait: hold, expiresIn: 10m }
    - name: node-proxy
      action: approve
      verbs: [create]
      resources: [nodes/proxy]
      approval: { approvers: [{ group: approvers }], wait: retry }
    - name: configmap-changes
      action: approve
      verbs: [patch, delete, deletecollection]
      resources: [configmaps]
      namespaces: ['gw-bind-*']
      approval: { approvers: [{ group: approvers }], wait: retry }
    - name: everything-else
      action: allow
      verbs: ['*']
`

describe('an approval binds the whole request (kubectl, the API server, the kubelet)', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  let bob: string

  before(async () => {
    const e = env()
    await grantHumans(e)
    await namespaceWithPods(e.cluster, NS, {
      box: { containers: [{ name: 'app' }, { name: 'side' }] },
    })
    g = await startApprovalGatehouse(e, { policy: BINDING_POLICY })
    bob = g.kubeconfig({ token: HUMANS.bob, name: 'bob' })
  })
  after(() => g?.stop())

  const bobKubectl = (args: string[], signal?: AbortSignal) =>
    kubectl('1.35', args, { kubeconfig: bob, timeoutMs: 90_000, ...(signal ? { signal } : {}) })
  const approve = async (id: string): Promise<void> => {
    const r = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, HUMANS.alice, {})
    assert.equal(r.code, 200, JSON.stringify(r.body))
  }
  /** The API server's audit events (one per request: its last stage) that match. */
  /**
   * Requests that reached the API server (its audit events, one per request), leaving out the
   * dry runs Gatehouse sends to show approvers what a request would do (Audit-ID `<id>-dry-run`).
   */
  const events = (match: (e: AuditEvent) => boolean): AuditEvent[] => {
    const byId = new Map<string, AuditEvent>()
    for (const e of readAuditEvents(env().cluster.auditLogPath))
      if (!e.auditID.endsWith('-dry-run') && match(e)) byId.set(e.auditID, e)
    return [...byId.values()]
  }
  const commandOf = (a: ApprovalRecord): unknown =>
    a.highlights?.find((h) => h.field === 'command')?.value
  const execsInKubelet = (): string[] =>
    kubeletRequestsFor(env().cluster, NS, 'box')
      .filter((r) => r.path.startsWith('/exec/'))
      .map((r) => `${r.path} ${new URLSearchParams(r.query).getAll('command').join(' ')}`)

  test('exec: a swapped command, container or TTY waits under its own approval and never runs on the approved one', async () => {
    // `exec -- echo approved` is held; the requester gives up (Ctrl-C): the approval stays pending
    const giveUp = new AbortController()
    const first = bobKubectl(['-n', NS, 'exec', 'box', '--', 'echo', 'approved'], giveUp.signal)
    const ls = await waitForPending(
      g,
      (a) => JSON.stringify(commandOf(a)) === '["echo","approved"]',
    )
    assert.match(ls.request.summary, /command \["echo", "approved"\] container "app"$/)
    giveUp.abort()
    await first
    // the swapped command waits on an approval of its own
    let swappedDone = false
    const swapped = bobKubectl(['-n', NS, 'exec', 'box', '--', 'echo', 'SWAPPED']).finally(
      () => (swappedDone = true),
    )
    const echo = await waitForPending(
      g,
      (a) => JSON.stringify(commandOf(a)) === '["echo","SWAPPED"]',
    )
    assert.notEqual(echo.id, ls.id)
    await approve(ls.id)
    await sleep(2500)
    assert.equal(swappedDone, false, 'the swapped command is still held after ls was approved')
    assert.ok(
      !execsInKubelet().some((x) => x.includes('SWAPPED')),
      'SWAPPED never reached the kubelet',
    )
    const denied = await adminApi(g, 'POST', `/api/v1/approvals/${echo.id}/deny`, HUMANS.carol, {
      comment: 'not what was asked',
    })
    assert.equal(denied.code, 200)
    const r = await swapped
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /denied by human:carol/)

    // another container, or a TTY: each its own approval, even with ls approved and unused
    const other = new AbortController()
    const side = bobKubectl(
      ['-n', NS, 'exec', 'box', '-c', 'side', '--', 'echo', 'approved'],
      other.signal,
    )
    const sideApproval = await waitForPending(
      g,
      (a) => a.highlights?.find((h) => h.field === 'container')?.value === 'side',
    )
    assert.notEqual(sideApproval.id, ls.id)
    other.abort()
    await side
    const term = new Terminal(
      [kubectlPath('1.35'), '-n', NS, 'exec', '-it', 'box', '--', 'echo', 'approved'],
      {
        env: { KUBECONFIG: bob },
      },
    )
    try {
      const tty = await waitForPending(
        g,
        (a) =>
          (a.highlights?.find((h) => h.field === 'streams')?.value as { tty?: boolean })?.tty ===
          true,
      )
      assert.notEqual(tty.id, ls.id)
      assert.match(tty.request.summary, /with a TTY/)
    } finally {
      term.kill()
    }

    // the approved request itself still runs, once
    const ok = await bobKubectl(['-n', NS, 'exec', 'box', '--', 'echo', 'approved'])
    assert.equal(ok.code, 0, ok.stderr)
    await sleep(1000)
    const ran = execsInKubelet()
    assert.deepEqual(
      ran,
      [`/exec/${NS}/box/app echo approved`],
      'the kubelet ran only the approved exec',
    )
    const api = events((e) => e.objectRef?.subresource === 'exec' && e.objectRef.namespace === NS)
    assert.ok(api.length >= 1)
    for (const e of api) {
      const q = new URL(e.requestURI, 'https://x').searchParams
      assert.deepEqual(q.getAll('command'), ['echo', 'approved'], e.requestURI)
      assert.equal(q.get('container'), 'app')
      assert.notEqual(q.get('tty'), 'true')
    }
  })

  test('node proxy: an approved GET .../proxy/healthz is not a POST .../proxy/run/...', async () => {
    const node = env().cluster.nodeName
    const healthz = ['get', '--raw', `/api/v1/nodes/${node}/proxy/healthz`]
    const asked = await bobKubectl(healthz)
    assert.notEqual(asked.code, 0)
    const id = approvalIdIn(asked.stderr)
    await approve(id)
    const runPath = `/api/v1/nodes/${node}/proxy/run/${NS}/box/app?cmd=id`
    const file = join(env().dir, 'empty.json')
    writeFileSync(file, '{}')
    const swapped = await bobKubectl(['create', '--raw', runPath, '-f', file])
    assert.notEqual(swapped.code, 0, swapped.stdout)
    assert.notEqual(approvalIdIn(swapped.stderr), id, 'the POST asks for an approval of its own')
    const otherPath = await bobKubectl([
      'get',
      '--raw',
      `/api/v1/nodes/${node}/proxy/run/${NS}/box/app`,
    ])
    assert.notEqual(approvalIdIn(otherPath.stderr), id, 'and so does another subpath')
    // the approval was not spent by the swaps: the approved GET passes now
    const ok = await bobKubectl(healthz)
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.stdout.trim(), 'ok')
    const kubelet = kubeletRequestsFor(env().cluster, NS, 'box').filter((r) =>
      r.path.startsWith('/run'),
    )
    assert.deepEqual(kubelet, [], "nothing reached the kubelet's /run")
    const proxied = events(
      (e) => e.objectRef?.resource === 'nodes' && e.objectRef.subresource === 'proxy',
    )
    assert.deepEqual(
      proxied.map((e) => `${e.verb} ${e.requestURI}`),
      [`get /api/v1/nodes/${node}/proxy/healthz`],
    )
  })

  test("dryRun: an approved dry run of a delete, in the query or in kubectl's DeleteOptions, does not delete", async () => {
    const admin = adminClient(env().cluster)
    await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'victim' },
      data: { k: 'v' },
    })
    const victim = `/api/v1/namespaces/${NS}/configmaps/victim`
    const victimExists = async (): Promise<void> =>
      assert.equal((await admin.raw('GET', victim)).statusCode, 200, 'the victim is still there')
    // the query form: DELETE ...?dryRun=All
    const rawDry = ['delete', '--raw', `${victim}?dryRun=All`]
    const q = approvalIdIn((await bobKubectl(rawDry)).stderr)
    assert.match((await g.server.approvals.get(q))!.request.summary, /named "victim" \(dry run\)$/)
    await approve(q)
    for (const plain of [
      ['delete', '--raw', victim],
      ['-n', NS, 'delete', 'configmap', 'victim'],
    ]) {
      const r = await bobKubectl(plain)
      assert.notEqual(r.code, 0, plain.join(' '))
      assert.notEqual(approvalIdIn(r.stderr), q, plain.join(' '))
    }
    await victimExists()
    assert.equal((await bobKubectl(rawDry)).code, 0)
    await victimExists()
    // kubectl's form: --dry-run=server puts dryRun: [All] in the DeleteOptions body
    const dry = ['-n', NS, 'delete', 'configmap', 'victim', '--dry-run=server']
    const b = approvalIdIn((await bobKubectl(dry)).stderr)
    const shown = (await g.server.approvals.get(b))!
    assert.match(shown.request.summary, /named "victim" \(dry run\)$/)
    assert.match(shown.body?.text ?? '', /"dryRun": \[\s*"All"\s*\]/)
    await approve(b)
    const plain = await bobKubectl(['-n', NS, 'delete', 'configmap', 'victim'])
    assert.notEqual(plain.code, 0)
    assert.notEqual(approvalIdIn(plain.stderr), b)
    const ok = await bobKubectl(dry)
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /deleted.*\(server dry run\)/)
    await victimExists()
    await sleep(1000)
    const deletes = events(
      (e) => e.verb === 'delete' && e.objectRef?.name === 'victim' && e.objectRef.namespace === NS,
    )
    // the two approved dry runs, nothing else (and the victim is still there)
    assert.deepEqual(
      deletes.map((e) => e.requestURI).sort(),
      [victim, `${victim}?dryRun=All`].sort(),
    )
  })

  test('deletecollection: another selector, or none, is another request', async () => {
    const admin = adminClient(env().cluster)
    for (const [name, app] of [
      ['cm-a1', 'a'],
      ['cm-a2', 'a'],
      ['cm-b1', 'b'],
    ])
      await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, labels: { app } },
      })
    const path = `/api/v1/namespaces/${NS}/configmaps`
    const a = await bobKubectl(['delete', '--raw', `${path}?labelSelector=app%3Da`])
    const id = approvalIdIn(a.stderr)
    const shown = (await g.server.approvals.get(id))!
    assert.match(
      shown.request.summary,
      /^deletecollection configmaps in namespace ".*" labelSelector "app=a"$/,
    )
    // what it would delete, from the API server's own dry run
    const items = shown.highlights?.find((h) => h.field.startsWith('items'))?.value
    assert.deepEqual(items, [`${NS}/cm-a1`, `${NS}/cm-a2`])
    await approve(id)
    for (const other of [`${path}?labelSelector=app%3Db`, path]) {
      const r = await bobKubectl(['delete', '--raw', other])
      assert.notEqual(r.code, 0, other)
      assert.notEqual(approvalIdIn(r.stderr), id, other)
    }
    const ok = await bobKubectl(['delete', '--raw', `${path}?labelSelector=app%3Da`])
    assert.equal(ok.code, 0, ok.stderr)
    const left = JSON.parse((await admin.raw('GET', `${path}?labelSelector=app`)).body) as {
      items: { metadata: { name: string } }[]
    }
    assert.deepEqual(
      left.items.map((i) => i.metadata.name),
      ['cm-b1'],
    )
    const collections = events(
      (e) =>
        e.verb === 'deletecollection' &&
        e.objectRef?.namespace === NS &&
        !/dryRun/.test(e.requestURI),
    )
    assert.deepEqual(
      collections.map((e) => e.requestURI),
      [`${path}?labelSelector=app%3Da`],
    )
  })

  test('server-side apply: --force-conflicts is not the approved apply', async () => {
    const file = join(env().dir, `applied-${RUN}.yaml`)
    writeFileSync(
      file,
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: ${NS}\ndata:\n  k: v\n`,
    )
    const apply = ['apply', '--server-side', '-f', file]
    const asked = await bobKubectl(apply)
    const id = approvalIdIn(asked.stderr)
    await approve(id)
    const forced = await bobKubectl([...apply, '--force-conflicts'])
    assert.notEqual(forced.code, 0)
    assert.notEqual(approvalIdIn(forced.stderr), id)
    const ok = await bobKubectl(apply)
    assert.equal(ok.code, 0, ok.stderr)
    await sleep(1000)
    const patches = events(
      (e) => e.verb === 'patch' && e.objectRef?.name === 'applied' && e.objectRef.namespace === NS,
    )
    assert.ok(patches.length >= 1)
    for (const e of patches) assert.doesNotMatch(e.requestURI, /force=true/)
  })
})
