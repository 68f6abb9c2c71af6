// A write whose decision read the object the API server said it would store is pinned to that
// object's resourceVersion: it stores exactly what policy (and the approvers) judged, or fails
// with 409 Conflict. Proven with an approval hold, the longest gap there is between the
// decision and the write: the object changes while the request waits, the approved write is
// refused by the API server, and the object keeps the change made meanwhile.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { adminClient, ensureNamespace } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { KubeClient } from '../../harness/kube-client.ts'
import { authenticationConfig, useGatewayEnv } from './env.ts'

const RUN = Math.random().toString(36).slice(2, 8)
const NS = `pin-${RUN}`
const TOKENS = { approver: `pin-approver-${RUN}-0001`, dev: `pin-developer-${RUN}-002` }

describe('writes are pinned to the version their decision read', () => {
  const env = useGatewayEnv()
  let g: RunningGatehouse
  let dev: KubeClient

  before(async () => {
    const e = env()
    const policies = join(e.dir, `pin-policies-${RUN}.yaml`)
    writeFileSync(
      policies,
      `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: pinning}
spec:
  subjects: [{name: 'human:pin-dev'}]
  rules:
    - {name: everything, action: allow, verbs: ['*']}
    - name: scale-up-needs-approval
      action: approve
      verbs: [update]
      apiGroups: [apps]
      resources: [statefulsets]
      namespaces: [${NS}]
      when: has(object.spec) && object.spec.replicas > oldObject.spec.replicas
      approval: {approvers: [{group: approvers}], wait: hold, expiresIn: 5m}
`,
    )
    const tokens = join(e.dir, `pin-tokens-${RUN}.csv`)
    writeFileSync(
      tokens,
      `${TOKENS.approver},human:pin-approver,approvers\n${TOKENS.dev},human:pin-dev,developers\n`,
    )
    const auth = authenticationConfig(e.cluster, e.issuer) as { authenticators: unknown[] }
    g = await startGatehouse(e.cluster, {
      authentication: {
        authenticators: [
          ...auth.authenticators,
          { staticTokens: { file: tokens, insecureAllowStaticTokens: true } },
        ],
      },
      upstreamTokenFile: e.upstreamTokenFile,
      policies: [policies],
      overrides: {
        admin: {
          listen: { address: '127.0.0.1', port: 0 },
          subjects: [{ name: 'human:pin-approver' }],
        },
        approvals: { pollIntervalMs: 200 },
      },
    })
    const admin = adminClient(e.cluster)
    await ensureNamespace(admin, NS)
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `gatehouse-e2e:pin-dev-${RUN}` },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'cluster-admin',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'human:pin-dev' }],
    })
    await admin.ensure(`/apis/apps/v1/namespaces/${NS}/statefulsets`, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db' },
      spec: {
        replicas: 1,
        serviceName: 'db',
        selector: { matchLabels: { app: 'db' } },
        template: {
          metadata: { labels: { app: 'db' } },
          spec: { containers: [{ name: 'c', image: 'example.invalid/c:1' }] },
        },
      },
    })
    dev = new KubeClient({ server: g.url, ca: readFileSync(g.caFile), token: TOKENS.dev })
  })

  after(async () => {
    await g?.stop()
  })

  async function approveNext(): Promise<void> {
    const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
    try {
      for (let i = 0; i < 100; i++) {
        const list = await request(`${g.server.admin!.url}/api/v1/approvals?state=pending`, {
          dispatcher: agent,
          headers: { authorization: `Bearer ${TOKENS.approver}` },
        })
        const items = ((await list.body.json()) as { items: { id: string }[] }).items
        if (items[0]) {
          const r = await request(
            `${g.server.admin!.url}/api/v1/approvals/${items[0].id}/approve`,
            {
              method: 'POST',
              dispatcher: agent,
              headers: {
                authorization: `Bearer ${TOKENS.approver}`,
                'content-type': 'application/json',
              },
              body: JSON.stringify({ comment: 'ok' }),
            },
          )
          assert.equal(r.statusCode, 200, await r.body.text())
          return
        }
        await sleep(100)
      }
      throw new Error('no pending approval')
    } finally {
      await agent.close()
    }
  }

  const path = `/apis/apps/v1/namespaces/${NS}/statefulsets/db`
  const scaleTo = (n: number): Promise<{ statusCode: number; body: string }> =>
    dev.raw(
      'PATCH',
      path,
      JSON.stringify({ spec: { replicas: n } }),
      'application/merge-patch+json',
    )

  test('approved as judged: the write goes through', async () => {
    const held = scaleTo(2)
    await approveNext()
    const r = await held
    assert.equal(r.statusCode, 200, r.body)
    const stored = await adminClient(env().cluster).json<{ spec: { replicas: number } }>(
      'GET',
      path,
    )
    assert.equal(stored.spec.replicas, 2)
  })

  test('changed while held: the approved write is refused with 409, the change made meanwhile stays', async () => {
    const admin = adminClient(env().cluster)
    const held = scaleTo(3)
    // meanwhile someone else changes the object the approvers are looking at
    await sleep(500)
    await admin.json(
      'PATCH',
      path,
      { metadata: { labels: { changed: 'meanwhile' } } },
      'application/merge-patch+json',
    )
    await approveNext()
    const r = await held
    assert.equal(r.statusCode, 409, r.body)
    assert.match(r.body, /Conflict|modified/)
    const stored = await admin.json<{
      spec: { replicas: number }
      metadata: { labels: Record<string, string> }
    }>('GET', path)
    assert.equal(stored.spec.replicas, 2)
    assert.equal(stored.metadata.labels['changed'], 'meanwhile')
  })
})
