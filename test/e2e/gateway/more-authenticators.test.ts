// TokenReview and mTLS/SPIFFE authentication through Gatehouse, against the real API server.
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import {
  adminClient,
  ensureNamespace,
  kubectl,
  useCluster,
  waitForAuditEvent,
  type ClusterInfo,
} from '../../harness/index.ts'
import {
  prepareGatehouseAccount,
  startGatehouse,
  type RunningGatehouse,
} from '../../harness/gatehouse.ts'
import { createCa, issueCert, type TestCa } from '../../harness/pki.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const NS = `gw-authn-${Math.random().toString(36).slice(2, 7)}`
const SPIFFE_ID = 'spiffe://e2e.example/ns/ci/sa/backup'

let cluster: ClusterInfo
let gatehouse: RunningGatehouse
let dir: string
let clientCa: TestCa

function certKubeconfig(name: string, cert: { certFile: string; keyFile: string }): string {
  const file = join(dir, `${name}.kubeconfig`)
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'gw',
          cluster: {
            server: `${gatehouse.url}/clusters/harness`,
            'certificate-authority': gatehouse.caFile,
          },
        },
      ],
      users: [{ name, user: { 'client-certificate': cert.certFile, 'client-key': cert.keyFile } }],
      contexts: [{ name: 'gw', context: { cluster: 'gw', user: name } }],
      'current-context': 'gw',
    }),
  )
  return file
}

before(async () => {
  cluster = await useCluster()
  dir = tempDir('gw-authn-')
  const upstreamTokenFile = await prepareGatehouseAccount(cluster, dir)
  mkdirSync(join(dir, 'clients'))
  clientCa = createCa(join(dir, 'clients'), 'client-ca')
  const admin = adminClient(cluster)
  await ensureNamespace(admin, NS)
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}`
  await admin.ensure(`${rbac}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'configmap-reader' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
  })
  await admin.ensure(`${rbac}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'spiffe-backup' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
    subjects: [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `spiffe:${SPIFFE_ID}` },
    ],
  })
  gatehouse = await startGatehouse(cluster, {
    authentication: {
      authenticators: [
        { mtls: { spiffeTrustDomain: 'e2e.example', usernamePrefix: 'spiffe:' } },
        { tokenReview: { cluster: 'harness', cacheTtlSeconds: 10 } },
      ],
    },
    upstreamTokenFile,
    overrides: { listen: { address: '127.0.0.1', port: 0, clientCAFile: clientCa.certFile } },
  })
})

after(() => gatehouse?.stop())

describe('TokenReview and mTLS through Gatehouse', () => {
  test('a client certificate with a SPIFFE ID is an identity the cluster sees', async () => {
    const cert = issueCert(clientCa, 'backup', { client: true, sans: [`URI:${SPIFFE_ID}`] })
    const r = await kubectl(
      '1.32',
      ['get', 'configmaps', '-n', NS, '-o', 'name', '--selector', 'probe=mtls'],
      { kubeconfig: certKubeconfig('backup', cert) },
    )
    assert.equal(r.code, 0, r.stderr)
    const event = await waitForAuditEvent(
      cluster.auditLogPath,
      (e) =>
        e.requestURI.includes(`/namespaces/${NS}/configmaps`) &&
        e.requestURI.includes('probe%3Dmtls'),
    )
    assert.equal(event.impersonatedUser?.username, `spiffe:${SPIFFE_ID}`)
    assert.deepEqual(event.impersonatedUser?.extra?.['gatehouse.dev/auth-method'], ['mtls'])
  })

  test('a certificate from another trust domain or another CA is refused', async () => {
    const wrongDomain = issueCert(clientCa, 'intruder', {
      client: true,
      sans: ['URI:spiffe://evil.example/ns/ci/sa/x'],
    })
    const r1 = await kubectl('1.32', ['get', 'configmaps', '-n', NS], {
      kubeconfig: certKubeconfig('intruder', wrongDomain),
    })
    assert.equal(r1.code, 1)
    assert.match(r1.stderr, /Unauthorized|must be logged in/)
    mkdirSync(join(dir, 'other'), { recursive: true })
    const foreign = issueCert(createCa(join(dir, 'other'), 'other-ca'), 'stranger', {
      client: true,
      sans: [`URI:${SPIFFE_ID}`],
    })
    const r2 = await kubectl('1.32', ['get', 'configmaps', '-n', NS], {
      kubeconfig: certKubeconfig('stranger', foreign),
    })
    assert.equal(r2.code, 1)
    assert.match(r2.stderr, /Unauthorized|must be logged in/)
  })

  test('an opaque token is judged by TokenReview, and reserved groups never travel upstream', async () => {
    // The harness admin token is a static token of the API server, in group system:masters.
    const kubeconfig = gatehouse.kubeconfig({ token: cluster.adminToken, name: 'opaque' })
    const r = await kubectl('1.32', ['get', 'namespaces', '--selector', 'probe=tokenreview'], {
      kubeconfig,
    })
    // Through Gatehouse it is `harness-admin` without system:masters: RBAC refuses.
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Forbidden.*User "harness-admin" cannot list resource "namespaces"/)
    const event = await waitForAuditEvent(
      cluster.auditLogPath,
      (e) => e.requestURI.includes('probe%3Dtokenreview') && e.impersonatedUser !== undefined,
    )
    assert.equal(event.impersonatedUser?.username, 'harness-admin')
    assert.ok(
      !(event.impersonatedUser?.groups ?? []).includes('system:masters'),
      JSON.stringify(event.impersonatedUser),
    )
    const bad = await kubectl('1.32', ['get', 'namespaces'], {
      kubeconfig: gatehouse.kubeconfig({ token: 'not-a-valid-token-at-all', name: 'bad' }),
    })
    assert.match(bad.stderr, /Unauthorized|must be logged in/)
    assert.equal(
      readFileSync(cluster.auditLogPath, 'utf8').includes('not-a-valid-token-at-all'),
      false,
    )
  })
})
