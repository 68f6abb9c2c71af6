// How Gatehouse behaves at its edges, through real clients and the real API server: routing
// between clusters, refusals as Kubernetes Status objects (unknown cluster, unclassifiable
// request, oversized headers or bodies, unreachable upstream), serviceAccountToken forwarding,
// long-lived watches, /gatehouse/readyz and graceful shutdown.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { after, before, describe, test } from 'node:test'
import {
  adminClient,
  ensureNamespace,
  kubectl,
  readAuditEvents,
  useCluster,
  waitForAuditEvent,
  type ClusterInfo,
} from '../../harness/index.ts'
import {
  prepareGatehouseAccount,
  startGatehouse,
  type RunningGatehouse,
} from '../../harness/gatehouse.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { authenticationConfig, CI_REPOSITORY } from './env.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const NS = `gw-behaviour-${Math.random().toString(36).slice(2, 7)}`
const MINTED_SA = 'minted-deployer'

let cluster: ClusterInfo
let gatehouse: RunningGatehouse
let issuer: OidcIssuer
let token: string

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

function send(
  path: string,
  opts: {
    method?: string
    headers?: Record<string, string>
    body?: string
    gw?: RunningGatehouse
  } = {},
): Promise<Reply> {
  const gw = opts.gw ?? gatehouse
  const url = new URL(gw.url)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: opts.method ?? 'GET',
        agent: false,
        ca: readFileSync(gw.caFile),
        headers: { accept: 'application/json', authorization: `Bearer ${token}`, ...opts.headers },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

function status(reply: Reply): { code: number; reason: string; message: string; kind: string } {
  assert.equal(reply.headers['content-type'], 'application/json', reply.text)
  return JSON.parse(reply.text) as { code: number; reason: string; message: string; kind: string }
}

before(async () => {
  cluster = await useCluster()
  const dir = tempDir('gw-behaviour-')
  const upstreamTokenFile = await prepareGatehouseAccount(cluster, dir)
  const admin = adminClient(cluster)
  await ensureNamespace(admin, NS)
  // serviceAccountToken mode: the mapped ServiceAccount, what it may do, and Gatehouse's right
  // to mint its tokens (deploy/rbac/service-account-token.yaml, for this namespace and name).
  await admin.ensure(`/api/v1/namespaces/${NS}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: MINTED_SA },
  })
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}`
  await admin.ensure(`${rbac}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'gatehouse:token-minter' },
    rules: [
      {
        apiGroups: [''],
        resources: ['serviceaccounts/token'],
        resourceNames: [MINTED_SA],
        verbs: ['create'],
      },
    ],
  })
  await admin.ensure(`${rbac}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'gatehouse:token-minter' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'gatehouse:token-minter',
    },
    subjects: [{ kind: 'ServiceAccount', name: 'gatehouse', namespace: 'gatehouse-system' }],
  })
  // (The built-in `view` role is aggregated by controller-manager, which the harness does not run.)
  await admin.ensure(`${rbac}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'configmap-reader' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
  })
  await admin.ensure(`${rbac}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'minted-deployer-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
    subjects: [{ kind: 'ServiceAccount', name: MINTED_SA, namespace: NS }],
  })
  await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'gatehouse-e2e:ci-admins' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'github:octo-org' }],
  })
  issuer = await startOidcIssuer({ dir })
  const base = {
    server: cluster.server,
    caFile: cluster.caFile,
    credential: { tokenFile: upstreamTokenFile },
  }
  gatehouse = await startGatehouse(cluster, {
    authentication: authenticationConfig(cluster, issuer),
    upstreamTokenFile,
    overrides: {
      limits: { maxHeaderBytes: 8192, maxRequestBodyBytes: 4096, shutdownGraceMs: 2000 },
      clusters: [
        {
          name: 'harness',
          default: true,
          ...base,
          upstreamTimeouts: { connectMs: 2000, headersMs: 1000 },
        },
        { name: 'second', ...base },
        {
          name: 'minted',
          ...base,
          forwarding: {
            mode: 'serviceAccountToken',
            serviceAccount: { namespace: NS, name: MINTED_SA },
            tokenExpirationSeconds: 600,
          },
        },
        {
          name: 'down',
          server: 'https://127.0.0.1:1',
          caFile: cluster.caFile,
          credential: { tokenFile: upstreamTokenFile },
          upstreamTimeouts: { connectMs: 1000, headersMs: 1000 },
        },
        {
          name: 'unverified',
          server: cluster.server,
          insecureSkipTLSVerify: true,
          credential: { tokenFile: upstreamTokenFile },
        },
      ],
    },
  })
  token = await issuer.mintGitHubActions({
    repository: CI_REPOSITORY,
    repository_owner: 'octo-org',
    expiresInSeconds: 1800,
  })
})

after(async () => {
  await gatehouse?.stop()
  await issuer?.close()
})

describe('Gatehouse at its edges', () => {
  test('clusters by path prefix, and the default cluster at the root', async () => {
    for (const prefix of ['', '/clusters/harness', '/clusters/second']) {
      const r = await send(`${prefix}/api/v1/namespaces/${NS}/configmaps`)
      assert.equal(r.status, 200, `${prefix}: ${r.text}`)
      assert.equal((JSON.parse(r.text) as { kind: string }).kind, 'ConfigMapList')
    }
  })

  test('an unknown cluster is a 404 Status naming the known ones', async () => {
    const s = status(await send('/clusters/nope/api/v1/pods'))
    assert.equal(s.code, 404)
    assert.equal(s.reason, 'NotFound')
    assert.match(
      s.message,
      /no cluster named 'nope'; known clusters: harness, second, minted, down, unverified/,
    )
  })

  test('an unclassifiable request is refused with 400 and never forwarded', async () => {
    const marker = `unclassifiable-${randomUUID().slice(0, 8)}`
    for (const path of [
      `/api/v1/namespaces/${NS}//configmaps/${marker}`,
      `/api/v1/namespaces/${NS}/configmaps/x/../${marker}`,
      `/api/v1/namespaces/${NS}/configmaps/${marker}%2Fx`,
    ]) {
      const s = status(await send(path))
      assert.equal(s.code, 400, path)
      assert.match(s.message, /cannot classify/)
    }
    await new Promise((r) => setTimeout(r, 1000))
    assert.equal(
      readAuditEvents(cluster.auditLogPath).filter((e) => e.requestURI.includes(marker)).length,
      0,
    )
  })

  test('oversized headers (431) and bodies (413) are refused as Status objects', async () => {
    const big = status(
      await send(`/api/v1/namespaces/${NS}/configmaps`, {
        headers: { 'x-padding': 'a'.repeat(10_000) },
      }),
    )
    assert.equal(big.code, 431)
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'too-big' },
      data: { blob: 'x'.repeat(8000) },
    })
    const r = await send(`/api/v1/namespaces/${NS}/configmaps`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    })
    const s = status(r)
    assert.equal(s.code, 413)
    assert.equal(s.reason, 'RequestEntityTooLarge')
    const created = await adminClient(cluster).raw(
      'GET',
      `/api/v1/namespaces/${NS}/configmaps/too-big`,
    )
    assert.equal(created.statusCode, 404, 'the oversized object was not created')
  })

  test('an unreachable API server is a 503 Status kubectl prints', async () => {
    const kubeconfig = gatehouse.kubeconfig({ token, cluster: 'down' })
    const r = await kubectl('1.32', ['get', 'configmaps', '-n', NS], { kubeconfig })
    assert.equal(r.code, 1)
    // kubectl prints its own text for 503 during discovery; the Status itself names the cause.
    assert.match(r.stderr, /Error from server \(ServiceUnavailable\)/)
    const s = status(await send(`/clusters/down/api/v1/namespaces/${NS}/configmaps`))
    assert.equal(s.code, 503)
    assert.equal(s.reason, 'ServiceUnavailable')
    assert.match(s.message, /cluster 'down'/)
  })

  test('serviceAccountToken mode: the cluster sees the mapped ServiceAccount, with a minted token', async () => {
    const marker = `minted-${randomUUID().slice(0, 8)}`
    const r = await send(
      `/clusters/minted/api/v1/namespaces/${NS}/configmaps?labelSelector=marker%3D${marker}`,
    )
    assert.equal(r.status, 200, r.text)
    const event = await waitForAuditEvent(cluster.auditLogPath, (e) =>
      e.requestURI.includes(marker),
    )
    assert.equal(event.user.username, `system:serviceaccount:${NS}:${MINTED_SA}`)
    assert.equal(event.impersonatedUser, undefined)
    // The mapped account's RBAC applies: it may view, not write.
    const w = await send(`/clusters/minted/api/v1/namespaces/${NS}/configmaps`, {
      method: 'POST',
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: marker } }),
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(status(w).code, 403)
    // One TokenRequest serves many requests (cached until most of its lifetime is spent).
    await send(`/clusters/minted/api/v1/namespaces/${NS}/configmaps`)
    const mints = readAuditEvents(cluster.auditLogPath).filter(
      (e) =>
        e.objectRef?.subresource === 'token' &&
        e.objectRef.name === MINTED_SA &&
        e.verb === 'create',
    )
    assert.equal(mints.length, 1)
  })

  test('a watch outlives the upstream header timeout and still delivers events', async () => {
    const url = new URL(gatehouse.url)
    const events: string[] = []
    const name = `late-${randomUUID().slice(0, 8)}`
    const done = new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: `/api/v1/namespaces/${NS}/configmaps?watch=1&fieldSelector=metadata.name%3D${name}`,
          ca: readFileSync(gatehouse.caFile),
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.setEncoding('utf8')
          res.on('data', (d: string) => {
            events.push(d)
            if (d.includes('"ADDED"')) {
              req.destroy()
              resolve()
            }
          })
        },
      )
      req.on('error', (e) => (events.some((x) => x.includes('ADDED')) ? resolve() : reject(e)))
      req.end()
    })
    // Idle for three times headersMs (1 s) before the event happens.
    await new Promise((r) => setTimeout(r, 3000))
    await adminClient(cluster).json('POST', `/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name },
    })
    await done
    assert.ok(events.join('').includes(name))
  })

  test('HTTP/2 by ALPN: requests and a watch multiplexed on one connection', async () => {
    const { connect } = await import('node:http2')
    const session = connect(gatehouse.url, { ca: readFileSync(gatehouse.caFile) })
    try {
      const get = (path: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const stream = session.request({
            ':path': path,
            authorization: `Bearer ${token}`,
            accept: 'application/json',
          })
          let body = ''
          let status = 0
          stream.on('response', (h) => (status = Number(h[':status'])))
          stream.setEncoding('utf8')
          stream.on('data', (d: string) => (body += d))
          stream.on('end', () => resolve({ status, body }))
          stream.on('error', reject)
        })
      const name = `h2-${randomUUID().slice(0, 8)}`
      const watch = session.request({
        ':path': `/api/v1/namespaces/${NS}/configmaps?watch=1&fieldSelector=metadata.name%3D${name}`,
        authorization: `Bearer ${token}`,
      })
      const added = new Promise<string>((resolve) => {
        let text = ''
        watch.setEncoding('utf8')
        watch.on('data', (d: string) => {
          text += d
          if (text.includes('"ADDED"')) resolve(text)
        })
      })
      const [a, b] = await Promise.all([
        get(`/api/v1/namespaces/${NS}/configmaps`),
        get('/clusters/second/version'),
      ])
      assert.equal(a.status, 200, a.body)
      assert.equal((JSON.parse(a.body) as { kind: string }).kind, 'ConfigMapList')
      assert.equal(b.status, 200)
      const refused = await get('/clusters/nope/api')
      assert.equal(refused.status, 404)
      await adminClient(cluster).json('POST', `/api/v1/namespaces/${NS}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name },
      })
      assert.match(await added, new RegExp(name))
      watch.close()
    } finally {
      session.close()
    }
  })

  test('/gatehouse/readyz reports ready and the disabled TLS verification loudly', async () => {
    const r = await send('/gatehouse/readyz', { headers: {} })
    assert.equal(r.status, 200)
    const body = JSON.parse(r.text) as { status: string; warnings: string[] }
    assert.equal(body.status, 'ok')
    assert.ok(
      body.warnings.some((w) =>
        /cluster 'unverified': TLS verification of the API server is DISABLED/.test(w),
      ),
      r.text,
    )
  })

  test('graceful shutdown: watches are ended, new requests refused, the process stops within the bound', async () => {
    const dir = tempDir('gw-shutdown-')
    const gw = await startGatehouse(cluster, {
      authentication: authenticationConfig(cluster, issuer),
      upstreamTokenFile: await prepareGatehouseAccount(cluster, dir),
      overrides: {
        limits: { maxHeaderBytes: 32768, maxRequestBodyBytes: 1 << 20, shutdownGraceMs: 1500 },
      },
    })
    const url = new URL(gw.url)
    const watchEnded = new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: `/api/v1/namespaces/${NS}/configmaps?watch=1`,
          ca: readFileSync(gw.caFile),
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve('ended'))
          res.on('error', () => resolve('aborted'))
          res.on('close', () => resolve('closed'))
        },
      )
      req.on('error', reject)
      req.end()
    })
    await new Promise((r) => setTimeout(r, 500))
    const t0 = Date.now()
    await gw.stop()
    assert.ok(['ended', 'closed'].includes(await watchEnded))
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`)
    await assert.rejects(
      send('/api/v1/namespaces', { gw }),
      /ECONNREFUSED|socket hang up|ECONNRESET/,
    )
  })
})
