// A record that cannot be built never means "forwarded without a record" (issue 18 item 4):
// bodies nested 2,000 levels (an array field), 5,000 levels (objects) and 100,000 levels deep,
// under a policy that keeps request bodies in records, are refused before forwarding with a
// Kubernetes Status, each refusal has a Gatehouse record, and the API server never sees them.
// (The request-body decoder may refuse them first, 400/413; either way nothing is forwarded.)
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { adminClient, readAuditEvents } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { authenticationConfig, useGatewayEnv } from './env.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)

function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}
function deepObject(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
}

const CASES = [
  { name: 'arrays-2000', nested: () => deepArray(2000) },
  { name: 'objects-5000', nested: () => deepObject(5000) },
  { name: 'arrays-100000', nested: () => deepArray(100_000) },
]

describe('deeply nested request bodies', () => {
  let gh: RunningGatehouse
  before(async () => {
    const e = env()
    const policy = join(e.dir, `deep-${RUN}.yaml`)
    writeFileSync(
      policy,
      [
        'apiVersion: gatehouse.dev/v1alpha1',
        'kind: Policy',
        'metadata: { name: e2e-deep-bodies }',
        'spec:',
        "  subjects: [{ name: '*' }]",
        '  audit: request',
        '  rules:',
        "    - { name: everything, action: allow, verbs: ['*'], mask: { enabled: false } }",
      ].join('\n'),
    )
    gh = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
      policies: [policy],
    })
  })
  after(() => gh?.stop())

  for (const c of CASES)
    test(`${c.name}: refused before forwarding, with a record`, async () => {
      const e = env()
      const name = `deep-${RUN}-${c.name}`
      const body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name}"},"data":{},"x":${c.nested()}}`
      const dispatcher = new Agent({ connect: { ca: readFileSync(gh.caFile) } })
      const res = await request(`${gh.url}/api/v1/namespaces/default/configmaps`, {
        dispatcher,
        method: 'POST',
        headers: {
          authorization: `Bearer ${await e.issuer.mintGitHubActions()}`,
          'content-type': 'application/json',
        },
        body,
      })
      const text = await res.body.text()
      await dispatcher.close()
      assert.ok(res.statusCode >= 400 && res.statusCode < 600, `HTTP ${res.statusCode}`)
      const status = JSON.parse(text) as { kind: string; message: string }
      assert.equal(status.kind, 'Status')
      const id = String(res.headers['audit-id'])
      assert.equal(await gh.server.audit.flush(), true)
      const record = await gh.server.audit.store.get(id)
      assert.ok(record, 'the refusal has a record')
      assert.ok(record.error?.code.startsWith('GW_'), JSON.stringify(record.error))
      await sleep(1000)
      assert.deepEqual(
        readAuditEvents(e.cluster.auditLogPath).filter(
          (ev) => ev.requestURI.includes(name) || ev.objectRef?.name === name,
        ),
        [],
        'the API server never saw it',
      )
      const stored = await adminClient(e.cluster).raw(
        'GET',
        `/api/v1/namespaces/default/configmaps/${name}`,
      )
      assert.equal(stored.statusCode, 404, 'the object was not stored')
    })
})
