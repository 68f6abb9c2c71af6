// The shipped example policies, enforced on real kubectl through Gatehouse: allowed commands
// work, blocked ones print a Forbidden error naming the policy and rule and never reach the API
// server (its audit log is the oracle), and Gatehouse's own audit trail holds one record per
// request with the right identity and decision, in SQLite and, in the same tests, PostgreSQL.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import type { AuditRecord } from '../../../src/audit/index.ts'
import {
  adminClient,
  createRunningPod,
  ensureNamespace,
  kubectl,
  readAuditEvents,
  waitForAuditEvent,
  type KubectlVersion,
} from '../../harness/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { AUDIENCE, authenticationConfig, CI_REPOSITORY, useGatewayEnv } from './env.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const PG_SCHEMA = `gh_e2e_policy_${process.pid}`
const RUN = Math.random().toString(36).slice(2, 8)
const CI_USER = 'ci:octo-org-app'
const BACKUP = 'k8s:serviceaccount:ops:backup'
const SCANNER = 'k8s:serviceaccount:ops:scanner'
const AUDITOR = 'k8s:serviceaccount:ops:auditor'

/** The examples as shipped, with the GitHub issuer URL pointed at the test issuer. */
function examplePolicies(issuerUrl: string, dir: string): string[] {
  const out = join(dir, 'policies')
  mkdirSync(out, { recursive: true })
  const src = join(repoRoot, 'examples', 'policies')
  for (const f of readdirSync(src))
    writeFileSync(
      join(out, f),
      readFileSync(join(src, f), 'utf8').replaceAll(
        'https://token.actions.githubusercontent.com',
        issuerUrl,
      ),
    )
  // and one test policy whose condition reads the request object
  writeFileSync(
    join(out, 'e2e-replicas-cap.yaml'),
    readFileSync(join(repoRoot, 'test', 'fixtures', 'policies', 'replicas-cap.yaml')),
  )
  return [out]
}

describe('policies and audit through Gatehouse', () => {
  const env = useGatewayEnv({ policies: (issuer, dir) => examplePolicies(issuer.url, dir) })

  interface Instance {
    store: 'sqlite' | 'postgres'
    gatehouse: RunningGatehouse
    ci: string
    backup: string
    scanner: string
    auditor: string
    deployer: string
  }
  const instances: Instance[] = []
  let started = 0

  async function saToken(e: ReturnType<typeof env>, name: string): Promise<string> {
    const admin = adminClient(e.cluster)
    await admin.ensure('/api/v1/namespaces/ops/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name },
    })
    return await admin.serviceAccountToken('ops', name, {
      audiences: [AUDIENCE],
      expirationSeconds: 3600,
    })
  }

  before(async () => {
    const e = env()
    started = Date.now()
    const admin = adminClient(e.cluster)
    // The cluster side, as an operator following docs/policy.md would set it up: the CI
    // deployer's mapped user may edit in staging; the ops service accounts get broad RBAC, so what
    // they may do is decided by Gatehouse's policies alone.
    await ensureNamespace(admin, 'staging')
    await ensureNamespace(admin, 'ops')
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'gatehouse-e2e:deployer' },
      rules: [
        {
          apiGroups: ['', 'apps'],
          resources: ['deployments', 'replicasets', 'services', 'configmaps', 'pods', 'pods/log'],
          verbs: ['*'],
        },
      ],
    })
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/namespaces/staging/rolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'ci-deployer', namespace: 'staging' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'gatehouse-e2e:deployer',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: CI_USER }],
    })
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'gatehouse-e2e:ops-admins' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'cluster-admin',
      },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'k8s-namespace:ops' },
      ],
    })
    await createRunningPod(admin, 'staging', 'web-0')
    await createRunningPod(admin, 'ops', 'tools-0')
    await admin.ensure('/api/v1/namespaces/ops/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      stringData: { password: 'e2e-not-a-real-password' },
    })

    const ciToken = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
      ref: 'refs/heads/main',
      run_id: '777',
    })
    const tokens = {
      ci: ciToken,
      backup: await saToken(e, 'backup'),
      scanner: await saToken(e, 'scanner'),
      auditor: await saToken(e, 'auditor'),
      deployer: await saToken(e, 'deployer'),
    }
    const kubeconfigs = (g: RunningGatehouse, store: string) => ({
      ci: g.kubeconfig({ token: tokens.ci, name: `${store}-ci` }),
      backup: g.kubeconfig({ token: tokens.backup, name: `${store}-backup` }),
      scanner: g.kubeconfig({ token: tokens.scanner, name: `${store}-scanner` }),
      auditor: g.kubeconfig({ token: tokens.auditor, name: `${store}-auditor` }),
      deployer: g.kubeconfig({ token: tokens.deployer, name: `${store}-deployer` }),
    })
    instances.push({
      store: 'sqlite',
      gatehouse: e.gatehouse,
      ...kubeconfigs(e.gatehouse, 'sqlite'),
    })
    const pgGatehouse = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
      policies: examplePolicies(e.issuer.url, join(e.dir, 'pg')),
      overrides: {
        audit: { store: { postgres: { url: PG_URL, schema: PG_SCHEMA } } },
        admin: { listen: { address: '127.0.0.1', port: 0 }, subjects: [{ name: AUDITOR }] },
      },
    })
    instances.push({
      store: 'postgres',
      gatehouse: pgGatehouse,
      ...kubeconfigs(pgGatehouse, 'postgres'),
    })
  })

  after(async () => {
    await instances.find((i) => i.store === 'postgres')?.gatehouse.stop()
    const c = new pg.Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`)
    await c.end()
  })

  async function recordOf(g: RunningGatehouse, id: string): Promise<AuditRecord> {
    await g.server.audit.flush()
    const r = await g.server.audit.store.get(id)
    assert.ok(r, `Gatehouse has no audit record for request ${id}`)
    return r
  }

  /** Runs a command that must be refused; returns the Gatehouse request id from the message. */
  async function expectForbidden(
    kubeconfig: string,
    args: string[],
    names: RegExp,
    version: KubectlVersion = '1.32',
  ): Promise<string> {
    const r = await kubectl(version, args, { kubeconfig })
    assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} succeeded: ${r.stdout}`)
    assert.match(r.stderr, /Error from server \(Forbidden\)|Forbidden/, r.stderr)
    assert.match(r.stderr, names, r.stderr)
    const id = /gatehouse request id ([0-9a-f-]{36})/.exec(r.stderr)?.[1]
    assert.ok(id, `no request id in: ${r.stderr}`)
    return id
  }

  async function expectOk(
    kubeconfig: string,
    args: string[],
    version: KubectlVersion = '1.32',
  ): Promise<string> {
    const r = await kubectl(version, args, { kubeconfig })
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  const denied: {
    inst: Instance
    id: string
    identity: string
    policy: string | undefined
    rule: string
  }[] = []

  for (const store of ['sqlite', 'postgres'] as const) {
    const inst = (): Instance => instances.find((i) => i.store === store)!

    describe(`example policies through Gatehouse (audit in ${store})`, () => {
      test('ci-deployer: deploys in staging; production and Secrets are refused', async () => {
        const i = inst()
        await expectOk(i.ci, [
          'create',
          'deployment',
          `web-${store}-${RUN}`,
          '--image=example.invalid/web:1',
          '-n',
          'staging',
        ])
        const out = await expectOk(
          i.ci,
          ['get', 'deployments', '-n', 'staging', '-o', 'name'],
          '1.35',
        )
        assert.match(out, new RegExp(`deployment.apps/web-${store}-${RUN}`))
        const id = await expectForbidden(
          i.ci,
          ['get', 'deployments', '-n', 'prod'],
          /no Gatehouse policy allows github:octo-org\/app to list deployments\.apps in namespace "prod" \(default deny/,
        )
        denied.push({
          inst: i,
          id,
          identity: `github:${CI_REPOSITORY}`,
          policy: undefined,
          rule: 'builtin:default-deny',
        })
        const id2 = await expectForbidden(
          i.ci,
          ['get', 'secret', 'db', '-n', 'staging'],
          /default deny/,
          '1.20',
        )
        denied.push({
          inst: i,
          id: id2,
          identity: `github:${CI_REPOSITORY}`,
          policy: undefined,
          rule: 'builtin:default-deny',
        })
        // The write went to the cluster as the mapped user, with the record saying so.
        const records = await i.gatehouse.server.audit.store.query({
          identity: `github:${CI_REPOSITORY}`,
          verb: 'create',
          resource: 'deployments',
          sinceMs: started,
        })
        const create = records.find(
          (r) => r.request?.name === '' && r.request.namespace === 'staging',
        )
        assert.ok(create, 'no audit record of the deployment create')
        assert.equal(create.decision?.policy, 'ci-deployer')
        assert.equal(create.decision?.rule, 'deploy-in-staging')
        assert.deepEqual(create.principal, {
          user: CI_USER,
          groups: ['ci:deployers'],
          via: 'impersonation',
        })
        assert.equal(create.identity?.claims['run_id'], '777')
        assert.equal(create.response.code, 201)
        // audit level `request` (the policy's): the body of the create is in the record
        // (kubectl sends protobuf here: the record keeps it base64-encoded)
        const body = create.requestBody
        assert.ok(body && 'data' in body, JSON.stringify(create))
        assert.equal(body.contentType, 'application/vnd.kubernetes.protobuf')
        assert.ok(
          Buffer.from(body.data, body.encoding).toString('latin1').includes(`web-${store}-${RUN}`),
        )
        assert.ok(
          create.source.kubectlCommand?.includes('create deployment'),
          JSON.stringify(create.source),
        )
      })

      test('protected-namespaces: nobody deletes prod, and the request never reaches the cluster', async () => {
        const i = inst()
        const id = await expectForbidden(
          i.ci,
          ['delete', 'namespace', 'prod'],
          /protected-namespaces.*never-delete|policy 'protected-namespaces', rule 'never-delete'/,
        )
        denied.push({
          inst: i,
          id,
          identity: `github:${CI_REPOSITORY}`,
          policy: 'protected-namespaces',
          rule: 'never-delete',
        })
        const id2 = await expectForbidden(
          i.backup,
          ['delete', 'namespace', 'kube-system'],
          /rule 'never-delete'/,
          '1.35',
        )
        denied.push({
          inst: i,
          id: id2,
          identity: BACKUP,
          policy: 'protected-namespaces',
          rule: 'never-delete',
        })
      })

      test('no-exec-for-bots: kubectl exec is refused before any stream opens', async () => {
        const i = inst()
        const id = await expectForbidden(
          i.ci,
          ['exec', 'web-0', '-n', 'staging', '--', 'sh', '-c', 'true'],
          /rule 'no-shell'/,
        )
        denied.push({
          inst: i,
          id,
          identity: `github:${CI_REPOSITORY}`,
          policy: 'no-exec-for-bots',
          rule: 'no-shell',
        })
        const id2 = await expectForbidden(
          i.backup,
          ['exec', 'tools-0', '-n', 'ops', '--', 'cat', '/etc/hostname'],
          /bots may not exec into pods/,
          '1.35',
        )
        denied.push({
          inst: i,
          id: id2,
          identity: BACKUP,
          policy: 'no-exec-for-bots',
          rule: 'no-shell',
        })
      })

      test('backup-job and no-cluster-wide-secret-list: reads per namespace, no writes, no cluster-wide Secret list', async () => {
        const i = inst()
        assert.match(
          await expectOk(i.backup, ['get', 'secrets', '-n', 'ops', '-o', 'name']),
          /secret\/db/,
        )
        const id = await expectForbidden(
          i.backup,
          ['get', 'secrets', '-A'],
          /list Secrets one namespace at a time \(policy 'no-cluster-wide-secret-list', rule 'all-namespaces-secrets'\)/,
        )
        denied.push({
          inst: i,
          id,
          identity: BACKUP,
          policy: 'no-cluster-wide-secret-list',
          rule: 'all-namespaces-secrets',
        })
        // a streaming list (WatchList, what client-go informers send on 1.35+) is a watch
        // whose initial events are the list: refused alike
        const idStreaming = await expectForbidden(
          i.backup,
          [
            'get',
            '--raw',
            '/api/v1/secrets?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true',
          ],
          /list Secrets one namespace at a time \(policy 'no-cluster-wide-secret-list', rule 'all-namespaces-secrets'\)/,
        )
        denied.push({
          inst: i,
          id: idStreaming,
          identity: BACKUP,
          policy: 'no-cluster-wide-secret-list',
          rule: 'all-namespaces-secrets',
        })
        const id2 = await expectForbidden(
          i.backup,
          ['delete', 'configmap', 'settings', '-n', 'ops'],
          /to delete configmaps in namespace "ops" named "settings" \(default deny/,
        )
        denied.push({
          inst: i,
          id: id2,
          identity: BACKUP,
          policy: undefined,
          rule: 'builtin:default-deny',
        })
      })

      test('a CEL condition on the request object: more than 10 replicas is refused on create, apply and scale', async () => {
        const i = inst()
        const name = `capped-${store}-${RUN}`
        const manifest = (replicas: number): string => {
          const file = join(e().dir, `${name}-${replicas}.json`)
          writeFileSync(
            file,
            JSON.stringify({
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              metadata: { name, namespace: 'ops' },
              spec: {
                replicas,
                selector: { matchLabels: { app: name } },
                template: {
                  metadata: { labels: { app: name } },
                  spec: { containers: [{ name: 'c', image: 'example.invalid/c:1' }] },
                },
              },
            }),
          )
          return file
        }
        await expectOk(i.deployer, ['apply', '-f', manifest(3)])
        const big = await expectForbidden(
          i.deployer,
          ['apply', '-f', manifest(20)],
          /more than 10 replicas needs an approval \(policy 'e2e-replicas-cap', rule 'at-most-10-replicas'\)/,
        )
        denied.push({
          inst: i,
          id: big,
          identity: 'k8s:serviceaccount:ops:deployer',
          policy: 'e2e-replicas-cap',
          rule: 'at-most-10-replicas',
        })
        const scale = await expectForbidden(
          i.deployer,
          ['scale', 'deployment', name, '-n', 'ops', '--replicas=20'],
          /rule 'at-most-10-replicas'/,
        )
        denied.push({
          inst: i,
          id: scale,
          identity: 'k8s:serviceaccount:ops:deployer',
          policy: 'e2e-replicas-cap',
          rule: 'at-most-10-replicas',
        })
        await expectOk(i.deployer, ['scale', 'deployment', name, '-n', 'ops', '--replicas=5'])
        // kubectl create sends protobuf, which Gatehouse does not decode: the condition reads the
        // object from the API server's dry run instead
        await expectOk(i.deployer, [
          'create',
          'deployment',
          `${name}-pb`,
          '-n',
          'ops',
          '--image=example.invalid/c:1',
          '--replicas=2',
        ])
        const pb20 = await kubectl(
          '1.32',
          [
            'create',
            'deployment',
            `${name}-pb20`,
            '-n',
            'ops',
            '--image=example.invalid/c:1',
            '--replicas=20',
          ],
          { kubeconfig: i.deployer },
        )
        assert.notEqual(pb20.code, 0)
        assert.match(pb20.stderr, /Gatehouse denied .*rule 'at-most-10-replicas'/, pb20.stderr)
      })

      test('scanner: inventories everything except Secrets', async () => {
        const i = inst()
        assert.match(
          await expectOk(i.scanner, ['get', 'pods', '-A', '-o', 'name'], '1.20'),
          /pod\/web-0/,
        )
        const id = await expectForbidden(
          i.scanner,
          ['get', 'secret', 'db', '-n', 'ops'],
          /the scanner never reads Secrets \(policy 'scanner', rule 'no-secrets'\)/,
        )
        denied.push({ inst: i, id, identity: SCANNER, policy: 'scanner', rule: 'no-secrets' })
      })
    })
  }

  describe('audit trail', () => {
    test('every refused request has its record, and none of them reached the API server', async () => {
      assert.ok(denied.length >= 16, `only ${denied.length} refusals were made`)
      for (const d of denied) {
        const r = await recordOf(d.inst.gatehouse, d.id)
        assert.equal(r.identity?.name, d.identity)
        assert.equal(r.decision?.action, 'deny')
        assert.equal(r.decision?.policy, d.policy)
        assert.equal(r.decision?.rule, d.rule)
        assert.equal(r.response.code, 403)
        assert.equal(r.principal, null, 'a refused request is never forwarded')
      }
      // A request sent after all refusals is in the API server's log: the log is current, and
      // it holds none of the refused ids.
      const i = instances[0]!
      await expectOk(i.scanner, [
        'get',
        'configmap',
        `marker-${RUN}`,
        '-n',
        'ops',
        '--ignore-not-found',
      ])
      await waitForAuditEvent(
        e().cluster.auditLogPath,
        (ev) => ev.requestURI.includes(`marker-${RUN}`) && ev.stage === 'ResponseComplete',
      )
      const ids = new Set(denied.map((d) => d.id))
      const leaked = readAuditEvents(e().cluster.auditLogPath).filter((ev) => ids.has(ev.auditID))
      assert.deepEqual(leaked, [])
    })

    test('one record per forwarded request: Gatehouse records and the API server audit log join one to one', async () => {
      const cluster = e().cluster
      const ours = new Set([CI_USER, BACKUP, SCANNER])
      const forwarded = new Map<string, AuditRecord>()
      for (const inst of instances) {
        await inst.gatehouse.server.audit.flush()
        for (const r of await inst.gatehouse.server.audit.store.query({
          sinceMs: started - 1000,
          limit: 10_000,
        }))
          if (r.principal && ours.has(r.principal.user)) forwarded.set(r.id, r)
      }
      await new Promise((r) => setTimeout(r, 1500))
      const events = readAuditEvents(cluster.auditLogPath).filter(
        (ev) => ev.stage === 'ResponseComplete' && ours.has(ev.impersonatedUser?.username ?? ''),
      )
      const eventIds = new Set(events.map((ev) => ev.auditID))
      assert.ok(forwarded.size > 20, `only ${forwarded.size} forwarded records`)
      assert.deepEqual(
        [...forwarded.keys()].filter((id) => !eventIds.has(id)),
        [],
        'records without an API server event',
      )
      assert.deepEqual(
        [...eventIds].filter((id) => !forwarded.has(id)),
        [],
        'API server events without a Gatehouse record',
      )
      for (const ev of events) {
        const r = forwarded.get(ev.auditID)!
        assert.equal(r.principal?.user, ev.impersonatedUser?.username)
        assert.equal(r.response.code, ev.responseStatus?.code)
        assert.equal(r.request?.verb === 'create' ? 'create' : r.request?.verb, ev.verb)
      }
    })

    test('gatehouse audit list and show read the store, with filters', async () => {
      const inst = instances[0]!
      const configFile = join(inst.gatehouse.dataDir, 'gatehouse-cli.yaml')
      writeFileSync(configFile, JSON.stringify(inst.gatehouse.config))
      const cli = join(repoRoot, 'build', 'src', 'cli', 'main.js')
      const run = promisify(execFile)
      const { stdout } = await run(process.execPath, [
        cli,
        'audit',
        'list',
        '--config',
        configFile,
        '--identity',
        'k8s:serviceaccount:ops:*',
        '--decision',
        'deny',
        '--since',
        '1h',
        '-o',
        'jsonl',
      ])
      const lines = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditRecord)
      const expected = denied.filter((d) => d.inst === inst && d.identity.startsWith('k8s:'))
      const listed = new Set(lines.map((r) => r.id))
      // kubectl exec retries a refused WebSocket upgrade over SPDY: both refusals are listed.
      assert.deepEqual(
        expected.filter((d) => !listed.has(d.id)),
        [],
      )
      for (const r of lines) {
        assert.equal(r.decision?.action, 'deny')
        assert.match(r.identity?.name ?? '', /^k8s:serviceaccount:ops:/)
      }
      const table = (
        await run(process.execPath, [
          cli,
          'audit',
          'list',
          '--config',
          configFile,
          '--identity',
          SCANNER,
          '--resource',
          'secrets',
        ])
      ).stdout
      assert.match(
        table,
        /^TIME\s+IDENTITY\s+CLUSTER\s+VERB\s+RESOURCE\s+DECISION\s+RULE\s+SHADOW\s+CODE\s+ID/,
      )
      assert.match(
        table,
        /k8s:serviceaccount:ops:scanner\s+harness\s+get\s+secrets ops\/db\s+deny\s+scanner\/no-secrets\s+-\s+403/,
      )
      const shown = JSON.parse(
        (
          await run(process.execPath, [
            cli,
            'audit',
            'show',
            '--config',
            configFile,
            expected[0]!.id,
          ])
        ).stdout,
      ) as AuditRecord
      assert.equal(shown.id, expected[0]!.id)
      const bad = await run(process.execPath, [
        cli,
        'audit',
        'list',
        '--config',
        configFile,
        '--since',
        'yesterday',
      ]).catch((err: { code: number; stderr: string }) => err)
      assert.equal((bad as { code: number }).code, 2)
      assert.match((bad as { stderr: string }).stderr, /--since: expected a duration/)
    })

    test('the admin API answers the same queries, on its own listener, to admins only', async () => {
      const inst = instances.find((i) => i.store === 'postgres')!
      const admin = inst.gatehouse.server.admin!
      assert.ok(admin, 'admin listener not started')
      assert.notEqual(new URL(admin.url).port, new URL(inst.gatehouse.url).port)
      const { Agent, request } = await import('undici')
      const agent = new Agent({ connect: { ca: readFileSync(inst.gatehouse.caFile, 'utf8') } })
      const token = (file: string): string => /token: (\S+)/.exec(readFileSync(file, 'utf8'))![1]!
      const get = async (
        path: string,
        bearer?: string,
      ): Promise<{ status: number; body: unknown }> => {
        const res = await request(`${admin.url}${path}`, {
          dispatcher: agent,
          headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
        })
        return { status: res.statusCode, body: await res.body.json() }
      }
      const q = `/api/v1/audit/records?identity=${encodeURIComponent(SCANNER)}&decision=deny&since=1h`
      assert.equal((await get(q)).status, 401)
      assert.equal((await get(q, token(inst.scanner))).status, 403)
      const ok = await get(q, token(inst.auditor))
      assert.equal(ok.status, 200)
      const items = (ok.body as { items: AuditRecord[] }).items
      const expected = denied.filter((d) => d.inst === inst && d.identity === SCANNER)
      assert.deepEqual(new Set(items.map((r) => r.id)), new Set(expected.map((d) => d.id)))
      const one = await get(`/api/v1/audit/records/${expected[0]!.id}`, token(inst.auditor))
      assert.equal((one.body as AuditRecord).decision?.rule, 'no-secrets')
      const bad = await get('/api/v1/audit/records?verbose=1', token(inst.auditor))
      assert.equal(bad.status, 400)
      assert.match(JSON.stringify(bad.body), /unknown parameter 'verbose'/)
      await agent.close()
    })
  })

  function e(): ReturnType<typeof env> {
    return env()
  }
})
