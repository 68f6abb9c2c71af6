// Gatehouse on a current API server with only the constrained-impersonation RBAC
// (deploy/rbac/impersonate-constrained.yaml, KEP-5284): the requests of the identities its
// configuration maps work (through kubectl, exec included), each reaches the API server in the
// `user-info` mode, and Gatehouse's own token cannot act as anyone else: the API server refuses
// it every user, group, ServiceAccount and node the manifest does not list, and system:masters.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { parseAllDocuments } from 'yaml'
import { repoRoot } from '../../harness/binaries.ts'
import {
  adminClient,
  createRunningPod,
  ensureNamespace,
  kubectl,
  readAuditEvents,
  type AuditEvent,
} from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { GATEHOUSE_TOKEN_PROBE_AGENT } from '../../harness/join-invariant.ts'
import { authenticationConfig, CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)
const NS = `gw-constrained-${RUN}`
const ACCOUNT_NS = 'gatehouse-system'
const ACCOUNT = 'gatehouse-constrained'
const ACCOUNT_USER = `system:serviceaccount:${ACCOUNT_NS}:${ACCOUNT}`
const MANIFEST = join(repoRoot, 'deploy', 'rbac', 'impersonate-constrained.yaml')

interface ClusterRole {
  kind: string
  metadata: { name: string }
  rules: { resources?: string[]; resourceNames?: string[] }[]
}

/** The manifest's ClusterRole, exactly as shipped. */
function shippedRole(): ClusterRole {
  const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map(
    (d) => d.toJSON() as ClusterRole,
  )
  return docs.find((d) => d.kind === 'ClusterRole')!
}

async function serverMinor(e: GatewayEnv): Promise<number> {
  const admin = adminClient(e.cluster)
  const v = await admin.json<{ minor: string }>('GET', '/version')
  await admin.close()
  return Number.parseInt(v.minor, 10)
}

describe('constrained impersonation: Gatehouse with only deploy/rbac/impersonate-constrained.yaml', () => {
  let gatehouse: RunningGatehouse | undefined
  let token = ''
  let supported = false

  before(async () => {
    const e = env()
    supported = (await serverMinor(e)) >= 36
    if (!supported) return
    const admin = adminClient(e.cluster)
    await ensureNamespace(admin, ACCOUNT_NS)
    await ensureNamespace(admin, NS)
    // the ClusterRole as shipped, bound to an account of its own (Gatehouse's usual account
    // also holds the classic role; this one holds nothing else)
    const role = shippedRole()
    const roleFile = join(e.dir, 'constrained-role.json')
    writeFileSync(roleFile, JSON.stringify(role))
    const applied = await kubectl('1.32', ['apply', '-f', roleFile], {
      kubeconfig: e.cluster.adminKubeconfig,
    })
    assert.equal(applied.code, 0, applied.stderr)
    await admin.ensure(`/api/v1/namespaces/${ACCOUNT_NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: ACCOUNT },
    })
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `gatehouse-e2e:${ACCOUNT}` },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: role.metadata.name,
      },
      subjects: [{ kind: 'ServiceAccount', name: ACCOUNT, namespace: ACCOUNT_NS }],
    })
    token = await admin.serviceAccountToken(ACCOUNT_NS, ACCOUNT, { expirationSeconds: 3600 })
    const tokenFile = join(e.dir, 'gatehouse-constrained.token')
    writeFileSync(tokenFile, token, { mode: 0o600 })
    await createRunningPod(admin, NS, 'web')
    await admin.close()
    gatehouse = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: tokenFile,
    })
  })

  after(async () => {
    await gatehouse?.stop()
  })

  test('the shipped role grants only user-info impersonation of listed names', (t) => {
    if (!supported) return t.skip('the API server predates constrained impersonation (1.36)')
    const role = shippedRole()
    const users = role.rules.find((r) => r.resources?.includes('users'))
    assert.deepEqual(users?.resourceNames, [`github:${CI_REPOSITORY}`])
    const text = readFileSync(MANIFEST, 'utf8')
    // no legacy verb, no mode that reaches ServiceAccounts or nodes
    assert.doesNotMatch(
      text,
      /verbs: \[impersonate\]|\bimpersonate:(serviceaccount|arbitrary-node|associated-node)/,
    )
  })

  test("a mapped identity's requests work through Gatehouse, each in the user-info mode", async (t) => {
    if (!supported) return t.skip('the API server predates constrained impersonation (1.36)')
    const e = env()
    const ci = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
    })
    const kubeconfig = gatehouse!.kubeconfig({ token: ci, name: 'constrained-ci' })
    const cm = `constrained-${RUN}`
    const steps: [string, string[]][] = [
      ['create', ['create', 'configmap', cm, '-n', NS, '--from-literal=k=v']],
      ['get', ['get', 'configmap', cm, '-n', NS, '-o', 'jsonpath={.data.k}']],
      ['list', ['get', 'pods', '-n', NS]],
      ['exec', ['exec', 'web', '-n', NS, '--', 'echo', `constrained-exec-${RUN}`]],
      ['whoami', ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']],
      ['delete', ['delete', 'configmap', cm, '-n', NS]],
    ]
    for (const [name, args] of steps) {
      const r = await kubectl('1.37', args, { kubeconfig })
      assert.equal(r.code, 0, `${name}: ${r.stderr}`)
      if (name === 'get') assert.equal(r.stdout, 'v')
      if (name === 'exec') assert.equal(r.stdout, `constrained-exec-${RUN}\n`)
      if (name === 'whoami') assert.equal(r.stdout, `github:${CI_REPOSITORY}`)
    }
    // every request Gatehouse forwarded with this account went through the constrained mode
    let ours: AuditEvent[] = []
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      ours = readAuditEvents(e.cluster.auditLogPath).filter(
        (ev) => ev.user?.username === ACCOUNT_USER && ev.impersonatedUser !== undefined,
      )
      if (ours.some((ev) => ev.requestURI.includes(`configmaps/${cm}`) && ev.verb === 'delete'))
        break
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.ok(ours.length >= steps.length, `only ${ours.length} events`)
    for (const ev of ours) {
      assert.equal(ev.impersonatedUser?.username, `github:${CI_REPOSITORY}`)
      const meta = (ev as { authenticationMetadata?: { impersonationConstraint?: string } })
        .authenticationMetadata
      assert.equal(
        meta?.impersonationConstraint,
        'impersonate:user-info',
        `${ev.verb} ${ev.requestURI}: ${JSON.stringify(meta)}`,
      )
    }
    assert.ok(ours.some((ev) => ev.objectRef?.subresource === 'exec'))
  })

  test('an identity the role does not list is refused by the API server through Gatehouse', async (t) => {
    if (!supported) return t.skip('the API server predates constrained impersonation (1.36)')
    const e = env()
    const other = await e.issuer.mintGitHubActions({
      repository: 'octo-org/other',
      repository_owner: 'octo-org',
    })
    const kubeconfig = gatehouse!.kubeconfig({ token: other, name: 'constrained-other' })
    const r = await kubectl('1.37', ['get', 'configmaps', '-n', NS], { kubeconfig })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Error from server \(Forbidden\)/)
    // what the caller gets is the API server's own Status, naming the refused impersonation
    const agent = new Agent({ connect: { ca: readFileSync(gatehouse!.caFile) }, allowH2: false })
    try {
      const res = await request(`${gatehouse!.url}/api/v1/namespaces/${NS}/configmaps`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${other}`, accept: 'application/json' },
      })
      const body = (await res.body.json()) as { kind: string; message: string }
      assert.equal(res.statusCode, 403)
      assert.equal(body.kind, 'Status')
      assert.match(
        body.message,
        /^users\.authentication\.k8s\.io "github:octo-org\/other" is forbidden: User "system:serviceaccount:gatehouse-system:gatehouse-constrained" cannot impersonate:user-info/,
      )
    } finally {
      await agent.close()
    }
  })

  test("Gatehouse's own token cannot impersonate anyone its configuration does not map", async (t) => {
    if (!supported) return t.skip('the API server predates constrained impersonation (1.36)')
    const e = env()
    const agent = new Agent({ connect: { ca: readFileSync(e.cluster.caFile) }, allowH2: false })
    const attempt = async (
      headers: [string, string][],
    ): Promise<{ status: number; message: string }> => {
      const h: Record<string, string | string[]> = {
        authorization: `Bearer ${token}`,
        'user-agent': GATEHOUSE_TOKEN_PROBE_AGENT,
        accept: 'application/json',
      }
      for (const [k, v] of headers) {
        const prev = h[k]
        h[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v]
      }
      const res = await request(`${e.cluster.server}/api/v1/namespaces/${NS}/configmaps`, {
        dispatcher: agent,
        headers: h,
      })
      const body = (await res.body.json()) as { kind?: string; message?: string }
      return { status: res.statusCode, message: `${body.kind}: ${body.message ?? ''}` }
    }
    const user = ['impersonate-user', `github:${CI_REPOSITORY}`] as [string, string]
    const refusals: [string, [string, string][], RegExp][] = [
      [
        'an unmapped user',
        [['impersonate-user', 'github:evil-org/app']],
        /"github:evil-org\/app" is forbidden: .* cannot impersonate:user-info resource "users"/,
      ],
      [
        'an unmapped group',
        [user, ['impersonate-group', 'platform-admins']],
        /"platform-admins" is forbidden: .* cannot impersonate:user-info resource "groups"/,
      ],
      [
        'system:masters',
        [user, ['impersonate-group', 'system:masters']],
        /impersonating the system:masters group is not allowed/,
      ],
      [
        'a ServiceAccount',
        [['impersonate-user', 'system:serviceaccount:kube-system:default']],
        /cannot impersonate-on:serviceaccount:list/,
      ],
      [
        'a node',
        [['impersonate-user', `system:node:${e.cluster.nodeName}`]],
        /cannot impersonate-on:arbitrary-node:list/,
      ],
      [
        'an extra key Gatehouse does not send',
        [user, ['impersonate-extra-example.com%2fteam', 'x']],
        /cannot impersonate:user-info resource "userextras\/example\.com\/team"/,
      ],
      ['no impersonation at all (its own rights)', [], /cannot list resource "configmaps"/],
    ]
    try {
      for (const [what, headers, message] of refusals) {
        const r = await attempt(headers)
        assert.equal(r.status, 403, `${what}: ${r.message}`)
        assert.match(r.message, /^Status: /, what)
        assert.match(r.message, message, what)
      }
    } finally {
      await agent.close()
    }
  })
})
