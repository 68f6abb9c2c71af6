// Gatehouse itself, started in-process in front of the harness cluster for e2e tests.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig, type GatewayConfig } from '../../src/config/index.ts'
import { createLogger, silentLogger } from '../../src/observability/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { buildKubeconfig } from '../../src/cli/kubeconfig.ts'
import { repoRoot } from './binaries.ts'
import { adminClient, type ClusterInfo } from './cluster.ts'
import { kubectl } from './kubectl.ts'
import { accountOfToken, exportGatehouseRecords, registerGatehouse } from './gatehouse-records.ts'
import { tempDir } from './temp-dir.ts'

export interface RunningGatehouse {
  readonly url: string
  readonly caFile: string
  readonly dataDir: string
  /** The configuration as a file, for the gatehouse CLI (sessions replay, audit list...). */
  readonly configFile: string
  readonly config: GatewayConfig
  readonly server: RunningServer
  /** A kubeconfig for `cluster` (default: the harness cluster 'harness') with a literal token or an exec plugin. */
  kubeconfig(opts: {
    token?: string
    exec?: { command: string; args: string[] }
    cluster?: string
    name?: string
  }): string
  stop(): Promise<void>
}

export interface GatehouseOptions {
  /** The `authentication` section of the config. */
  authentication: unknown
  /** Gatehouse's own credential to the harness cluster: a token file (least-privilege SA) or the admin token. */
  upstreamTokenFile: string
  /** Extra config merged at the top level (limits, more clusters...). */
  overrides?: Record<string, unknown>
  clusterOverrides?: Record<string, unknown>
  /** Policy files or folders; default: test/fixtures/policies/allow-authenticated.yaml. */
  policies?: string[]
}

export const ALLOW_AUTHENTICATED_POLICY = join(
  repoRoot,
  'test',
  'fixtures',
  'policies',
  'allow-authenticated.yaml',
)

export async function startGatehouse(
  cluster: ClusterInfo,
  opts: GatehouseOptions,
): Promise<RunningGatehouse> {
  const dataDir = tempDir('gatehouse-data-')
  const raw = {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'GatewayConfig',
    dataDir,
    listen: { address: '127.0.0.1', port: 0 },
    authentication: opts.authentication,
    clusters: [
      {
        name: 'harness',
        default: true,
        server: cluster.server,
        caFile: cluster.caFile,
        credential: { tokenFile: opts.upstreamTokenFile },
        ...opts.clusterOverrides,
      },
    ],
    policies: { paths: opts.policies ?? [ALLOW_AUTHENTICATED_POLICY], watchIntervalMs: 200 },
    logLevel: 'debug',
    ...opts.overrides,
  }
  const config = parseConfig(raw, 'test gatehouse.yaml')
  // the end-of-run join check reads this instance's records (join-invariant.ts)
  const account = accountOfToken(readFileSync(opts.upstreamTokenFile, 'utf8'))
  const registration = registerGatehouse(cluster.runDir, config, account ? [account] : [])
  const configFile = join(dataDir, 'gatehouse.yaml')
  // JSON is YAML: the CLI reads the same configuration the in-process server runs with.
  writeFileSync(configFile, JSON.stringify(raw, null, 2), { mode: 0o600 })
  const logFile = join(dataDir, 'gatehouse.log')
  const { createWriteStream } = await import('node:fs')
  const logStream =
    process.env['GATEHOUSE_TEST_LOG'] === 'stderr' ? undefined : createWriteStream(logFile)
  const logger = logStream ? createLogger('debug', logStream) : createLogger('debug')
  const server = await startServer(config, { logger: logger ?? silentLogger() })
  const caFile = join(dataDir, 'pki', 'ca.crt')
  let n = 0
  return {
    url: server.listener.url,
    caFile,
    dataDir,
    configFile,
    config,
    server,
    kubeconfig({ token, exec, cluster: name = 'harness', name: file }) {
      const path = join(dataDir, `${file ?? `client-${++n}`}.kubeconfig`)
      writeFileSync(
        path,
        buildKubeconfig({
          gatewayUrl: server.listener.url,
          cluster: name,
          caCertPem: server.listener.caCertPem!,
          ...(token ? { token } : {}),
          ...(exec ? { exec } : {}),
        }),
        { mode: 0o600 },
      )
      return path
    },
    async stop() {
      await server.close()
      await exportGatehouseRecords(cluster.runDir, registration)
      await new Promise<void>((r) => (logStream ? logStream.end(() => r()) : r()))
    },
  }
}

async function retry<T>(what: string, fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts)
        throw new Error(`${what} failed after ${attempts} attempts: ${String(err)}`)
      await new Promise((r) => setTimeout(r, 200 * i))
    }
  }
}

/**
 * Set the cluster up as a user following docs/upstream-rbac.md would: apply deploy/rbac (the
 * gatehouse ServiceAccount with impersonation and TokenReview rights, nothing more), let
 * unauthenticated clients read the service-account issuer discovery (so Gatehouse can verify
 * the API server's tokens), and write a token for Gatehouse's account to `dir`. Idempotent.
 */
export async function prepareGatehouseAccount(cluster: ClusterInfo, dir: string): Promise<string> {
  await retry('kubectl apply deploy/rbac', async () => {
    const r = await kubectl(
      '1.32',
      [
        'apply',
        '-f',
        join(repoRoot, 'deploy', 'rbac', 'impersonate.yaml'),
        '-f',
        join(repoRoot, 'deploy', 'rbac', 'token-review.yaml'),
      ],
      {
        kubeconfig: cluster.adminKubeconfig,
      },
    )
    if (r.code !== 0) throw new Error(r.stderr)
  })
  const admin = adminClient(cluster)
  await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'gatehouse:issuer-discovery-public' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'system:service-account-issuer-discovery',
    },
    subjects: [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' },
    ],
  })
  const token = await admin.serviceAccountToken('gatehouse-system', 'gatehouse', {
    expirationSeconds: 86400,
  })
  const tokenFile = join(dir, 'gatehouse-upstream.token')
  writeFileSync(tokenFile, token, { mode: 0o600 })
  return tokenFile
}
