// Rolling a policy out through a running Gatehouse, as an operator would: first in shadow mode
// (kubectl prints Gatehouse's warning, the request still works, the audit record notes what the
// shadow policy would have done), then a broken edit (the last good set stays in force and
// /readyz says why), then enforced (kubectl gets a Forbidden naming the rule), then removed.
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { readFileSync } from 'node:fs'
import { adminClient, ensureNamespace, kubectl } from '../../harness/index.ts'
import { CI_REPOSITORY, useGatewayEnv } from './env.ts'

const NS = 'rollout'

const allowReads = (issuer: string): string => `
apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: { name: ci-reads }
spec:
  subjects: [{ issuer: '${issuer}', claims: { repository: ${CI_REPOSITORY} } }]
  rules:
    - { name: read, action: allow, verbs: [get, list, watch], namespaces: [${NS}] }
`

const noConfigMapLists = (mode: 'shadow' | 'enforce'): string => `
apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: { name: no-configmap-lists }
spec:
  mode: ${mode}
  subjects: [{ name: 'github:*' }]
  rules:
    - name: no-list
      action: deny
      verbs: [list]
      resources: [configmaps]
      message: read ConfigMaps by name
`

describe('policy rollout through a running Gatehouse', () => {
  let dir = ''
  const env = useGatewayEnv({
    policies: (issuer, d) => {
      dir = join(d, 'rollout-policies')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'ci-reads.yaml'), allowReads(issuer.url))
      writeFileSync(join(dir, 'no-configmap-lists.yaml'), noConfigMapLists('shadow'))
      return [dir]
    },
  })
  let kubeconfig = ''

  before(async () => {
    const e = env()
    await ensureNamespace(adminClient(e.cluster), NS)
    kubeconfig = e.gatehouse.kubeconfig({
      token: await e.issuer.mintGitHubActions(),
      name: 'rollout',
    })
  })

  const readyz = async (): Promise<{ status: string; warnings: string[] }> => {
    const e = env()
    const dispatcher = new Agent({ connect: { ca: readFileSync(e.gatehouse.caFile) } })
    try {
      const res = await request(`${e.gatehouse.url}/gatehouse/readyz`, { dispatcher })
      return (await res.body.json()) as { status: string; warnings: string[] }
    } finally {
      await dispatcher.close()
    }
  }

  /** Retries `fn` until it passes: policy files are polled (every 200 ms in tests). */
  async function eventually(what: string, fn: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await fn()
        return
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${what}: ${(e as Error).message}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }

  test('shadow: the request works, kubectl prints the warning, the record notes the shadow decision', async () => {
    const r = await kubectl('1.32', ['-n', NS, 'get', 'configmaps', '-o', 'name'], { kubeconfig })
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stderr,
      /Warning: Gatehouse: policy 'no-configmap-lists', rule 'no-list' would deny this request; allowed only because the policy is in shadow mode/,
    )
    const g = env().gatehouse
    await g.server.audit.flush()
    const [record] = await g.server.audit.store.query({
      identity: `github:${CI_REPOSITORY}`,
      namespace: NS,
      verb: 'list',
      resource: 'configmaps',
      limit: 1,
    })
    assert.ok(record)
    assert.equal(record.decision?.action, 'allow')
    assert.equal(record.decision?.rule, 'read')
    assert.deepEqual(record.decision?.shadow, {
      action: 'deny',
      policy: 'no-configmap-lists',
      rule: 'no-list',
    })
  })

  test('a broken edit keeps the last good set in force and /readyz says why', async () => {
    writeFileSync(
      join(dir, 'no-configmap-lists.yaml'),
      noConfigMapLists('enforce').replace('verbs: [list]', 'verbs: [lst]'),
    )
    await eventually('readyz reports the rejected change', async () => {
      const ready = await readyz()
      assert.equal(ready.status, 'ok', 'the last good set still serves')
      const w = ready.warnings.find((x) => x.startsWith('policy change rejected'))
      assert.ok(w, JSON.stringify(ready.warnings))
      assert.match(w, /no-configmap-lists\.yaml.*spec\.rules\[0\]\.verbs\[0\]: unknown verb "lst"/)
    })
    const r = await kubectl('1.32', ['-n', NS, 'get', 'configmaps'], { kubeconfig })
    assert.equal(r.code, 0, 'still the shadow policy: allowed')
    assert.match(r.stderr, /allowed only because the policy is in shadow mode/)
  })

  test('enforced: kubectl gets a Forbidden naming the rule; fixed by removing the policy', async () => {
    writeFileSync(join(dir, 'no-configmap-lists.yaml'), noConfigMapLists('enforce'))
    await eventually('the enforced policy refuses', async () => {
      const r = await kubectl('1.32', ['-n', NS, 'get', 'configmaps'], { kubeconfig })
      assert.notEqual(r.code, 0)
      assert.match(
        r.stderr,
        /Error from server \(Forbidden\): Gatehouse denied github:octo-org\/app to list configmaps in namespace "rollout": read ConfigMaps by name \(policy 'no-configmap-lists', rule 'no-list'\)/,
      )
    })
    const ready = await readyz()
    assert.equal(ready.warnings.filter((x) => x.startsWith('policy change rejected')).length, 0)
    // Reads by name were never refused.
    const byName = await kubectl(
      '1.32',
      ['-n', NS, 'get', 'configmap', 'kube-root-ca.crt', '--ignore-not-found'],
      {
        kubeconfig,
      },
    )
    assert.equal(byName.code, 0, byName.stderr)
    rmSync(join(dir, 'no-configmap-lists.yaml'))
    await eventually('the removed policy no longer refuses', async () => {
      const r = await kubectl('1.32', ['-n', NS, 'get', 'configmaps'], { kubeconfig })
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /Warning/)
    })
  })
})
