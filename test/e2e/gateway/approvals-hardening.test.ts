// What approvers see and who may approve, through Gatehouse with real kubectl against the real
// API server (issue 17 items 2, 3, 5 and 6): a ClusterRoleBinding of cluster-admin with a 70 KB
// annotation before its subjects shows roleRef and subjects first (API, `approvals show`) and
// whole; names with quotes and a bidi override read unambiguously in the CLI, in Slack and in
// the 403 Status of a request held under them (kubectl's output and the Status itself); a
// CI-shaped token of an issuer with plain claimMappings is refused as an approver; 1,000 requests
// of one requester are capped at its pending limit while another's older pending request stays
// in its approvers' inbox; malformed ids answer 400.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import type { ApprovalRecord } from '../../../src/approval/record.ts'
import { adminClient, ensureNamespace, kubectl } from '../../harness/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import type { RunningGatehouse } from '../../harness/gatehouse.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { AUDIENCE, useGatewayEnv } from './env.ts'
import {
  adminApi,
  grantHumans,
  HUMANS,
  named,
  startApprovalGatehouse,
  waitForPending,
} from './approvals-support.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')
const run = promisify(execFile)
const APP = `gw-hard-app-${RUN}`
const DB = `gw-hard-db-${RUN}`

const POLICY = `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-hardening
spec:
  subjects:
    - name: '*'
  rules:
    - name: bindings
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [clusterrolebindings]
      approval: { approvers: [{ group: approvers }], wait: hold, expiresIn: 10m }
    - name: app-config
      action: approve
      verbs: [create]
      resources: [configmaps]
      namespaces: ['gw-hard-app-*']
      approval: { approvers: [{ group: approvers }], wait: retry }
    - name: app-rolebindings
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [rolebindings]
      namespaces: ['gw-hard-app-*']
      approval: { approvers: [{ group: approvers }], wait: retry }
    - name: db-config
      action: approve
      verbs: [create]
      resources: [configmaps]
      namespaces: ['gw-hard-db-*']
      approval: { approvers: [{ group: db-approvers }], wait: retry }
    - name: everything-else
      action: allow
      verbs: ['*']
`

async function slackReceiver(): Promise<{ url: string; texts: string[]; server: Server }> {
  const texts: string[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      texts.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string }).text)
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack`, texts, server }
}

/** Every bidi control and C0/C1 control but the line feed. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/

describe('what approvers see, and who approves (kubectl through Gatehouse)', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  let bob: string
  let ciIssuer: OidcIssuer
  let slack: Awaited<ReturnType<typeof slackReceiver>>

  before(async () => {
    const e = env()
    await grantHumans(e)
    const admin = adminClient(e.cluster)
    await ensureNamespace(admin, APP)
    await ensureNamespace(admin, DB)
    slack = await slackReceiver()
    mkdirSync(join(e.dir, 'ci-issuer'), { recursive: true })
    ciIssuer = await startOidcIssuer({ dir: join(e.dir, 'ci-issuer'), audience: AUDIENCE })
    g = await startApprovalGatehouse(e, {
      policy: POLICY,
      extraAuthenticators: [
        {
          // an issuer of CI tokens configured with plain claim mappings: no preset, no extras
          oidc: {
            issuer: ciIssuer.url,
            caFile: ciIssuer.caFile,
            audiences: [AUDIENCE],
            claimMappings: {
              username: { claim: 'sub', prefix: 'ci:' },
              groups: { claim: 'groups', prefix: '' },
            },
          },
        },
      ],
      approvals: {
        approverLogin: { insecureStaticTokens: true, issuers: [ciIssuer.url] },
        notifications: { slack: [{ url: slack.url }] },
      },
    })
    bob = g.kubeconfig({ token: HUMANS.bob, name: 'bob' })
  })
  after(async () => {
    await g?.stop()
    await ciIssuer?.close()
    slack?.server.close()
  })

  const deny = async (id: string): Promise<void> => {
    const r = await adminApi(g, 'POST', `/api/v1/approvals/${id}/deny`, HUMANS.alice, {
      comment: 'test over',
    })
    assert.equal(r.code, 200, JSON.stringify(r.body))
  }
  const rawApi = async (
    path: string,
    token = HUMANS.alice,
  ): Promise<{ code: number; text: string }> => {
    const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
    try {
      const res = await request(`${g.server.admin!.url}${path}`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}` },
      })
      return { code: res.statusCode, text: await res.body.text() }
    } finally {
      await agent.close()
    }
  }
  const cli = async (...args: string[]): Promise<string> =>
    (await run(process.execPath, [CLI, ...args, '--config', g.configFile], { maxBuffer: 64 << 20 }))
      .stdout

  test('a 70 KB ClusterRoleBinding of cluster-admin shows roleRef and subjects first, and whole', async () => {
    const name = `e2e-hard-${RUN}-big`
    const manifest = join(env().dir, `${name}.json`)
    // the annotation comes first in the file, before subjects and roleRef
    writeFileSync(
      manifest,
      `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"${name}","annotations":{"padding":"${'x'.repeat(70 * 1024)}"}},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"system:authenticated"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}}`,
    )
    const held = kubectl('1.35', ['create', '-f', manifest], { kubeconfig: bob, timeoutMs: 90_000 })
    const a = await waitForPending(g, named(name))
    for (const [where, text] of [
      ['the admin API', (await rawApi(`/api/v1/approvals/${a.id}`)).text],
      ['gatehouse approvals show', await cli('approvals', 'show', a.id)],
    ] as const) {
      const head = text.slice(0, 8192)
      assert.match(head, /"field": ?"roleRef"/, where)
      assert.match(head, /"name": ?"cluster-admin"/, where)
      assert.match(head, /"name": ?"system:authenticated"/, where)
      assert.ok(text.indexOf('"highlights"') < text.indexOf('"body"'), where)
      const record = JSON.parse(text) as ApprovalRecord
      assert.ok(record.body!.text.length > 70 * 1024, `${where}: the body is whole`)
      assert.ok('code' in record.dryRun! && record.dryRun.text.includes('system:authenticated'))
      assert.ok('code' in record.dryRun && record.dryRun.text.includes('"cluster-admin"'))
    }
    await deny(a.id)
    const r = await held
    assert.notEqual(r.code, 0)
  })

  test('names with quotes and a bidi override read unambiguously in the CLI and in Slack', async () => {
    const quoted = `ci-view-${RUN}" in namespace "sandbox`
    const rlo = `evil-${RUN}\u202egnp.exe`
    const helds = [quoted, rlo].map((n) =>
      kubectl('1.35', ['create', 'clusterrolebinding', n, '--clusterrole=view', '--user=x'], {
        kubeconfig: bob,
        timeoutMs: 90_000,
      }),
    )
    const q = await waitForPending(g, named(quoted))
    const r = await waitForPending(g, named(rlo))
    const expectQuoted = `create clusterrolebindings.rbac.authorization.k8s.io cluster-wide named "ci-view-${RUN}\\" in namespace \\"sandbox"`
    assert.equal(q.request.summary, expectQuoted)
    assert.equal(
      r.request.summary,
      `create clusterrolebindings.rbac.authorization.k8s.io cluster-wide named "evil-${RUN}\\u202egnp.exe"`,
    )

    const list = await cli('approvals', 'list', '--state', 'pending')
    assert.ok(!RAW.test(list), 'no raw control or bidi character in the table')
    assert.ok(list.includes(expectQuoted))
    assert.ok(list.includes(`named "evil-${RUN}\\u202egnp.exe"`))

    const deadline = Date.now() + 10_000
    const sent = (id: string): string | undefined => slack.texts.find((t) => t.includes(id))
    while ((!sent(q.id) || !sent(r.id)) && Date.now() < deadline)
      await new Promise((x) => setTimeout(x, 50))
    for (const text of [sent(q.id)!, sent(r.id)!]) {
      assert.ok(!RAW.test(text), text)
      assert.equal(text.match(/<[^>]*\|[^>]*>/g)?.length, 1, "one link, Gatehouse's")
    }
    assert.ok(
      sent(q.id)!.includes('cluster-wide named `"ci-view-' + RUN + '\\" in namespace \\"sandbox"`'),
    )
    assert.ok(sent(r.id)!.includes('named `"evil-' + RUN + '\\u202egnp.exe"`'))
    await deny(q.id)
    await deny(r.id)
    for (const h of helds) assert.notEqual((await h).code, 0)
  })

  test('the 403 of a request held under names with quotes and a bidi override can be read only one way', async () => {
    const quoted = `ci-view-${RUN}" in namespace "sandbox`
    const rlo = `evil-${RUN}\u202egnp.exe`
    const ns = `namespace "${APP}"`
    const cases = [
      [quoted, `named "ci-view-${RUN}\\" in namespace \\"sandbox"`],
      [rlo, `named "evil-${RUN}\\u202egnp.exe"`],
    ] as const
    for (const [name, shown] of cases) {
      const summary = `create rolebindings.rbac.authorization.k8s.io in ${ns} ${shown}`
      // kubectl prints the Status message as it is: what a person reads in the terminal
      const r = await kubectl(
        '1.35',
        ['-n', APP, 'create', 'rolebinding', name, '--clusterrole=view', '--user=x'],
        { kubeconfig: bob, timeoutMs: 30_000 },
      )
      assert.notEqual(r.code, 0)
      const asked = /approval ([0-9a-f-]{36}) is pending/.exec(r.stderr)
      if (asked) await deny(asked[1]!)
      assert.ok(
        !RAW.test(r.stderr),
        `no raw control or bidi character: ${JSON.stringify(r.stderr)}`,
      )
      // kubectl create rolebinding: "error: failed to create rolebinding: <the Status message>"
      assert.ok(r.stderr.includes(`: Gatehouse holds ${summary} for approval: approval `), r.stderr)
      assert.ok(!r.stderr.includes('in namespace "sandbox"'), 'no second namespace to read')
      // the Status itself (the same request again: its own pending approval, the same message)
      const body = JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: APP },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'x' }],
      })
      const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
      try {
        const res = await request(
          `${g.url}/apis/rbac.authorization.k8s.io/v1/namespaces/${APP}/rolebindings`,
          {
            method: 'POST',
            dispatcher: agent,
            headers: { authorization: `Bearer ${HUMANS.bob}`, 'content-type': 'application/json' },
            body,
          },
        )
        const status = (await res.body.json()) as { code: number; reason: string; message: string }
        assert.equal(res.statusCode, 403)
        assert.equal(status.code, 403)
        assert.equal(status.reason, 'Forbidden')
        assert.match(
          status.message,
          new RegExp(
            `^Gatehouse holds ${summary.replace(/[.*+?^$()[\]{}|\\]/g, '\\$&')} for approval: approval [0-9a-f-]{36} is pending \\(e2e-hardening/app-rolebindings\\); approve at `,
          ),
        )
        assert.ok(!RAW.test(status.message), status.message)
        const id = /approval ([0-9a-f-]{36}) is pending/.exec(status.message)![1]!
        assert.equal((await g.server.approvals.get(id))?.request.summary, summary)
        await deny(id)
      } finally {
        await agent.close()
      }
    }
  })

  test('a CI-shaped token of an issuer with plain claimMappings is refused as an approver', async () => {
    const args = ['-n', APP, 'create', 'configmap', `ci-${RUN}`, '--from-literal=k=v']
    const asked = await kubectl('1.35', args, { kubeconfig: bob, timeoutMs: 30_000 })
    const id = /approval ([0-9a-f-]{36}) is pending/.exec(asked.stderr)![1]!
    const now = Math.floor(Date.now() / 1000)
    const ci = await ciIssuer.mint({
      iss: ciIssuer.url,
      aud: AUDIENCE,
      sub: 'deploy-bot',
      groups: ['approvers'],
      repository: 'octo-org/app',
      run_id: '4242',
      workflow: 'deploy',
      iat: now,
      exp: now + 600,
    })
    const seen = await adminApi(g, 'GET', `/api/v1/approvals/${id}`, ci)
    assert.equal(seen.code, 200, 'it matches the approver subjects: it may look')
    const tried = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, ci, {})
    assert.equal(tried.code, 403)
    assert.match(
      String(tried.body['error']),
      /ci:deploy-bot is a non-human identity \(its token carries the 'repository' claim/,
    )
    assert.equal((await g.server.approvals.get(id))?.state, 'pending')
    // a person's token of the same issuer may approve (the approvers' login)
    const person = await ciIssuer.mint({
      iss: ciIssuer.url,
      aud: AUDIENCE,
      sub: 'pat',
      groups: ['approvers'],
      iat: now,
      exp: now + 600,
    })
    const ok = await adminApi(g, 'POST', `/api/v1/approvals/${id}/approve`, person, {})
    assert.equal(ok.code, 200, JSON.stringify(ok.body))
  })

  test("1,000 requests of one requester stop at its pending limit; an older request of another stays in its approvers' inbox", async () => {
    const agent = new Agent({ connect: { ca: readFileSync(g.caFile) }, connections: 16 })
    const create = async (token: string, ns: string, name: string) => {
      const res = await request(`${g.url}/api/v1/namespaces/${ns}/configmaps`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
      })
      const status = (await res.body.json()) as { reason: string; code: number }
      return { code: res.statusCode, reason: status.reason, retryAfter: res.headers['retry-after'] }
    }
    try {
      const older = await create(HUMANS.dave, DB, `older-${RUN}`)
      assert.equal(older.code, 403)
      const codes = new Map<string, number>()
      let retryAfter: unknown
      let next = 0
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < 1000; i = next++) {
            const r = await create(HUMANS.bob, APP, `flood-${RUN}-${i}`)
            const key = `${r.code} ${r.reason}`
            codes.set(key, (codes.get(key) ?? 0) + 1)
            if (r.code === 429) retryAfter = r.retryAfter
          }
        }),
      )
      // 20 pending at most (approvals.maxPendingPerIdentity, default)
      assert.deepEqual(Object.fromEntries(codes), {
        '403 Forbidden': 20,
        '429 TooManyRequests': 980,
      })
      assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 30, String(retryAfter))
      const db = await adminApi(g, 'GET', '/api/v1/approvals?state=pending', HUMANS.erin)
      assert.equal(db.body['total'], 1)
      assert.equal((db.body['items'] as ApprovalRecord[])[0]!.requester.name, 'human:dave')
      const app = await adminApi(g, 'GET', '/api/v1/approvals?state=pending&limit=5', HUMANS.carol)
      assert.equal((app.body['items'] as unknown[]).length, 5, 'a page')
      assert.equal(app.body['total'], 20, "carol may decide on bob's 20, not on dave's")
      // an admin sees all of them
      const all = await adminApi(
        g,
        'GET',
        '/api/v1/approvals?state=pending&limit=100',
        HUMANS.alice,
      )
      assert.equal(all.body['total'], 21)
    } finally {
      await agent.close()
    }
  })

  test('malformed percent-escapes in ids answer 400, not 500', async () => {
    for (const path of [
      '/api/v1/approvals/%E0%A4%A',
      '/api/v1/approvals/%zz',
      '/api/v1/sessions/%E0%A4%A',
      '/api/v1/audit/records/%',
    ])
      assert.equal((await rawApi(path)).code, 400, path)
    const post = await adminApi(g, 'POST', '/api/v1/approvals/%zz/approve', HUMANS.alice, {})
    assert.equal(post.code, 400)
  })
})
