// The README's first command (`npm start`): a real kube-apiserver (with the fake kubelet), a
// local CI-style OIDC issuer, Gatehouse in front, and example non-human identities, each with
// its own kubeconfig. Runs until Ctrl-C. `--smoke` checks every identity once and exits (CI).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import {
  adminClient,
  createRunningPod,
  ensureNamespace,
  kubectl,
  startCluster,
} from '../test/harness/index.ts'
import { prepareGatehouseAccount, startGatehouse } from '../test/harness/gatehouse.ts'
import { startOidcIssuer } from '../test/harness/oidc-issuer.ts'
import { repoRoot } from '../test/harness/binaries.ts'

const AUDIENCE = 'gatehouse'

interface ExampleIdentity {
  name: string
  what: string
  /** A kubectl command line to try with this identity's kubeconfig. */
  tryIt: string
}

async function main(): Promise<number> {
  const smoke = process.argv.includes('--smoke')
  const dir = resolve(process.env['GATEHOUSE_SANDBOX_DIR'] ?? join(repoRoot, '.sandbox'))
  mkdirSync(dir, { recursive: true })
  const step = (s: string): void => console.log(`[sandbox] ${s}`)

  step('starting etcd, kube-apiserver and the fake kubelet')
  const cluster = await startCluster({ dir: join(dir, `cluster-${Date.now()}`) })
  const stops: (() => Promise<void>)[] = [() => cluster.stop()]
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
  }
  try {
    const info = cluster.info
    step('applying deploy/rbac (Gatehouse impersonates callers; it holds no other right)')
    const upstreamTokenFile = await prepareGatehouseAccount(info, dir)
    const issuer = await startOidcIssuer({ dir, audience: AUDIENCE })
    stops.push(() => issuer.close())

    step('starting Gatehouse with the sandbox policies')
    const gatehouse = await startGatehouse(info, {
      policies: [writeSandboxPolicies(join(dir, 'policies'), issuer.url)],
      authentication: {
        authenticators: [
          {
            oidc: {
              name: 'github',
              issuer: issuer.url,
              caFile: issuer.caFile,
              audiences: [AUDIENCE],
              preset: 'github-actions',
            },
          },
          {
            oidc: {
              name: 'k8s',
              issuer: info.server,
              caFile: info.caFile,
              audiences: [AUDIENCE],
              preset: 'kubernetes',
            },
          },
        ],
      },
      upstreamTokenFile,
      ...(process.env['GATEHOUSE_SANDBOX_PORT']
        ? {
            overrides: {
              listen: { address: '127.0.0.1', port: Number(process.env['GATEHOUSE_SANDBOX_PORT']) },
            },
          }
        : {}),
    })
    stops.push(() => gatehouse.stop())

    step('creating example workloads and identities')
    const admin = adminClient(info)
    for (const ns of ['apps', 'backups']) await ensureNamespace(admin, ns)
    await createRunningPod(admin, 'apps', 'web', {
      annotations: { 'gatehouse.test/log': 'listening on :8080\nready' },
    })
    const bind = async (
      name: string,
      kind: 'ClusterRoleBinding' | 'RoleBinding',
      role: string,
      subject: Record<string, string>,
      namespace?: string,
    ): Promise<void> => {
      const path = namespace
        ? `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`
        : '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings'
      await admin.ensure(path, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind,
        metadata: { name, ...(namespace ? { namespace } : {}) },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', ...subject }],
      })
    }
    // The cluster's RBAC still decides what each caller may do; Gatehouse makes it see them.
    // (Own roles: the built-in edit/view are filled by controller-manager, which is not running.)
    const role = (name: string, rules: unknown[]): Promise<void> =>
      admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name },
        rules,
      })
    await role('sandbox:deployer', [
      { apiGroups: ['', 'apps', 'batch'], resources: ['*'], verbs: ['*'] },
    ])
    await role('sandbox:reader', [
      { apiGroups: ['', 'apps', 'batch'], resources: ['*'], verbs: ['get', 'list', 'watch'] },
    ])
    await bind(
      'sandbox:ci-deployer',
      'RoleBinding',
      'sandbox:deployer',
      { kind: 'User', name: 'github:octo-org/app' },
      'apps',
    )
    await bind('sandbox:backup-job', 'ClusterRoleBinding', 'sandbox:reader', {
      kind: 'Group',
      name: 'k8s-namespace:backups',
    })
    await admin.ensure('/api/v1/namespaces/backups/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'backup-job' },
    })
    const saToken = await admin.json<{ status: { token: string } }>(
      'POST',
      '/api/v1/namespaces/backups/serviceaccounts/backup-job/token',
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: [AUDIENCE], expirationSeconds: 12 * 3600 },
      },
    )
    const ciToken = await issuer.mintGitHubActions({
      repository: 'octo-org/app',
      repository_owner: 'octo-org',
      expiresInSeconds: 12 * 3600,
    })

    const kubeconfigs = join(dir, 'kubeconfigs')
    mkdirSync(kubeconfigs, { recursive: true })
    const identities: ExampleIdentity[] = [
      {
        name: 'ci-deployer',
        what: 'a GitHub Actions job of octo-org/app (OIDC); may edit namespace apps',
        tryIt:
          'kubectl -n apps get pods,configmaps && kubectl -n apps logs web\n    kubectl -n apps exec web -- echo hello     # refused: policy no-exec-for-bots',
      },
      {
        name: 'backup-job',
        what: 'a Kubernetes ServiceAccount token (backups/backup-job); read-only everywhere',
        tryIt:
          'kubectl get namespaces && kubectl -n apps get pods\n    kubectl get secrets -A                       # refused: policy no-cluster-wide-secret-list',
      },
    ]
    const ciTokenFile = join(kubeconfigs, 'ci-deployer.token')
    writeFileSync(ciTokenFile, ciToken, { mode: 0o600 })
    const paths: Record<string, string> = {
      'ci-deployer': gatehouse.kubeconfig({
        exec: {
          command: process.execPath,
          args: [
            join(repoRoot, 'build', 'src', 'cli', 'main.js'),
            'credential',
            '--token-file',
            ciTokenFile,
          ],
        },
        name: 'ci-deployer',
      }),
      'backup-job': gatehouse.kubeconfig({ token: saToken.status.token, name: 'backup-job' }),
    }
    for (const id of identities)
      writeFileSync(
        join(kubeconfigs, `${id.name}.kubeconfig`),
        (await import('node:fs')).readFileSync(paths[id.name]!),
      )
    writeFileSync(join(dir, 'gatehouse.yaml'), stringify(gatehouse.config))

    if (smoke) {
      const ci = await kubectl('1.32', ['-n', 'apps', 'get', 'pods', '-o', 'name'], {
        kubeconfig: join(kubeconfigs, 'ci-deployer.kubeconfig'),
      })
      const backup = await kubectl(
        '1.32',
        ['-n', 'apps', 'delete', 'pod', 'web', '--dry-run=server'],
        { kubeconfig: join(kubeconfigs, 'backup-job.kubeconfig') },
      )
      const ok =
        ci.code === 0 &&
        ci.stdout.trim() === 'pod/web' &&
        backup.code !== 0 &&
        /forbidden/i.test(backup.stderr)
      console.log(
        `[sandbox] smoke: ci-deployer lists pods: ${ci.stdout.trim() || ci.stderr.trim()}; backup-job may not delete: ${backup.stderr.trim()}`,
      )
      await stopAll()
      return ok ? 0 : 1
    }

    console.log(`
Gatehouse is running at ${gatehouse.url} in front of a real kube-apiserver (${info.server}).

Example identities (kubeconfigs in ${kubeconfigs}):
${identities.map((i) => `  ${i.name.padEnd(12)} ${i.what}\n    export KUBECONFIG=${join(kubeconfigs, `${i.name}.kubeconfig`)}\n    ${i.tryIt}`).join('\n')}

See who the cluster saw: its audit log is ${info.auditLogPath}
  (every request shows user=${'system:serviceaccount:gatehouse-system:gatehouse'} impersonating the caller)
Direct admin access (bypassing Gatehouse): KUBECONFIG=${info.adminKubeconfig}
Gatehouse configuration: ${join(dir, 'gatehouse.yaml')}; its log: ${join(gatehouse.dataDir, 'gatehouse.log')}
Policies: ${join(dir, 'policies')} (edit them: Gatehouse reloads on change)
Gatehouse's audit trail: node ${join(repoRoot, 'build', 'src', 'cli', 'main.js')} audit list --config ${join(dir, 'gatehouse.yaml')}

Press Ctrl-C to stop everything.`)
    await new Promise<void>((resolveStop) => {
      process.once('SIGINT', resolveStop)
      process.once('SIGTERM', resolveStop)
    })
    step('stopping')
    await stopAll()
    return 0
  } catch (err) {
    await stopAll()
    throw err
  }
}

/**
 * The sandbox identities' policies, and the shipped examples that apply to everyone (protected
 * namespaces, no cluster-wide Secret list, no exec for bots).
 */
function writeSandboxPolicies(out: string, issuerUrl: string): string {
  mkdirSync(out, { recursive: true })
  for (const f of ['protected-namespaces', 'no-cluster-wide-secret-list', 'no-exec-for-bots'])
    copyFileSync(join(repoRoot, 'examples', 'policies', `${f}.yaml`), join(out, `${f}.yaml`))
  const policy = (name: string, subjects: unknown[], rules: unknown[]): void =>
    writeFileSync(
      join(out, `${name}.yaml`),
      stringify({
        apiVersion: 'gatehouse.dev/v1alpha1',
        kind: 'Policy',
        metadata: { name },
        spec: { subjects, rules },
      }),
    )
  policy(
    'sandbox-ci-deployer',
    [{ issuer: issuerUrl, claims: { repository: 'octo-org/app' } }],
    [{ name: 'apps-namespace', action: 'allow', verbs: ['*'], namespaces: ['apps'] }],
  )
  policy(
    'sandbox-backup-job',
    [{ name: 'k8s:serviceaccount:backups:backup-job' }],
    [{ name: 'read-only', action: 'allow', verbs: ['get', 'list', 'watch'] }],
  )
  return out
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[sandbox] failed: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)
