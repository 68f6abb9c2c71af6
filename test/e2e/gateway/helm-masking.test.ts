// Issue 14 item 5: helm works with masking on. helm keeps each release revision in a Secret of
// type helm.sh/release.v1 and reads it back; the identity whose policy lets it write Secrets in
// the release's namespace gets its release Secrets unmasked, every other Secret stays masked for
// it, and any other reader gets the release Secrets masked, with a Warning.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { adminClient, ensureNamespace, helm, kubectl } from '../../harness/index.ts'
import { KubeClient } from '../../harness/kube-client.ts'
import { HELLO_CHART } from '../scenarios/helm.ts'
import { SA_NAMESPACE, useGatewayEnv } from './env.ts'

const RUN = Math.random().toString(36).slice(2, 8)
const NS = `helm-masked-${RUN}`
const DEPLOYER = `k8s:serviceaccount:${SA_NAMESPACE}:helm-deployer`
const READER = `k8s:serviceaccount:${SA_NAMESPACE}:release-reader`
const MASKED_B64 = Buffer.from('[MASKED:secret]').toString('base64')

function policies(dir: string): string[] {
  const file = join(dir, 'helm-policies.yaml')
  writeFileSync(
    file,
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: helm-deployer}
spec:
  subjects: [{name: '${DEPLOYER}'}]
  rules:
    - {name: deploy, action: allow, verbs: ['*']}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: release-reader}
spec:
  subjects: [{name: '${READER}'}]
  rules:
    - {name: read, action: allow, verbs: [get, list, watch]}
`,
  )
  return [file]
}

describe('helm 4 with masking on (issue 14 item 5)', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => policies(dir) })
  let deployer = ''
  let readerToken = ''

  before(async () => {
    const e = env()
    await ensureNamespace(adminClient(e.cluster), NS)
    deployer = e.gatehouse.kubeconfig({
      token: await e.serviceAccountToken('helm-deployer'),
      name: `helm-deployer-${RUN}`,
    })
    readerToken = await e.serviceAccountToken('release-reader')
  })

  test('install, upgrade, rollback and uninstall succeed; other Secrets stay masked; another reader sees the release masked', async () => {
    const h = (args: string[]) =>
      helm([...args, '-n', NS], { kubeconfig: deployer, timeoutMs: 90_000 })
    let r = await h(['install', 'greeter', HELLO_CHART, '--set', 'password=chart-pass-1'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /STATUS: deployed/)
    r = await h(['list', '-o', 'json'])
    assert.deepEqual(
      (JSON.parse(r.stdout) as { name: string; revision: string }[]).map((x) => [
        x.name,
        String(x.revision),
      ]),
      [['greeter', '1']],
    )

    // the chart's own Secret reaches helm's identity masked, like every Secret but its releases
    r = await kubectl(
      '1.35',
      ['-n', NS, 'get', 'secret', 'greeter-secret', '-o', 'jsonpath={.data.password}'],
      {
        kubeconfig: deployer,
      },
    )
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, MASKED_B64)

    r = await h([
      'upgrade',
      'greeter',
      HELLO_CHART,
      '--set',
      'greeting=bye',
      '--set',
      'password=chart-pass-2',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /REVISION: 2/)
    r = await h(['rollback', 'greeter', '1'])
    assert.equal(r.code, 0, r.stderr)
    r = await h(['history', 'greeter', '-o', 'json'])
    assert.equal(r.code, 0, r.stderr)
    const history = JSON.parse(r.stdout) as { revision: number; status: string }[]
    assert.deepEqual(
      history.map((x) => [x.revision, x.status]),
      [
        [1, 'superseded'],
        [2, 'superseded'],
        [3, 'deployed'],
      ],
    )
    const admin = adminClient(env().cluster)
    const cm = await admin.json<{ data: { greeting: string } }>(
      'GET',
      `/api/v1/namespaces/${NS}/configmaps/greeter-config`,
    )
    assert.equal(cm.data.greeting, 'hello')

    // a reader that may not write Secrets there sees the release masked, and is told why
    const e = env()
    const reader = new KubeClient({
      server: e.gatehouse.url,
      ca: readFileSync(e.gatehouse.caFile),
      token: readerToken,
    })
    const release = await reader.raw(
      'GET',
      `/api/v1/namespaces/${NS}/secrets/sh.helm.release.v1.greeter.v1`,
    )
    assert.equal(release.statusCode, 200, release.body)
    const data = (JSON.parse(release.body) as { data: { release: string } }).data
    assert.equal(data.release, MASKED_B64)
    const rr = await kubectl(
      '1.35',
      ['-n', NS, 'get', 'secrets', '-l', 'owner=helm', '-o', 'name'],
      {
        kubeconfig: e.gatehouse.kubeconfig({ token: readerToken, name: `release-reader-${RUN}` }),
      },
    )
    assert.equal(rr.code, 0, rr.stderr)
    assert.match(rr.stderr, /Warning: .*helm release Secret/)

    r = await h(['uninstall', 'greeter'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /release "greeter" uninstalled/)
    const left = await admin.json<{ items: unknown[] }>(
      'GET',
      `/api/v1/namespaces/${NS}/secrets?labelSelector=owner%3Dhelm`,
    )
    assert.equal(left.items.length, 0)
    assert.equal(
      (await admin.raw('GET', `/api/v1/namespaces/${NS}/configmaps/greeter-config`)).statusCode,
      404,
    )
  })
})
