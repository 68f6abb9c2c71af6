// Gatehouse itself, started in-process in front of the harness cluster for e2e tests.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type GatewayConfig } from '../../src/config/index.ts'
import { createLogger, silentLogger } from '../../src/observability/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { buildKubeconfig } from '../../src/cli/kubeconfig.ts'
import type { ClusterInfo } from './cluster.ts'

export interface RunningGatehouse {
  readonly url: string
  readonly caFile: string
  readonly dataDir: string
  readonly config: GatewayConfig
  readonly server: RunningServer
  /** A kubeconfig for `cluster` (default: the harness cluster 'harness') with a literal token or an exec plugin. */
  kubeconfig(opts: { token?: string; exec?: { command: string; args: string[] }; cluster?: string; name?: string }): string
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
}

export async function startGatehouse(cluster: ClusterInfo, opts: GatehouseOptions): Promise<RunningGatehouse> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-data-'))
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
    logLevel: 'debug',
    ...opts.overrides,
  }
  const config = parseConfig(raw, 'test gatehouse.yaml')
  const logFile = join(dataDir, 'gatehouse.log')
  const { createWriteStream } = await import('node:fs')
  const logger = process.env['GATEHOUSE_TEST_LOG'] === 'stderr' ? createLogger('debug') : createLogger('debug', createWriteStream(logFile))
  const server = await startServer(config, { logger: logger ?? silentLogger() })
  const caFile = join(dataDir, 'pki', 'ca.crt')
  let n = 0
  return {
    url: server.listener.url,
    caFile,
    dataDir,
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
    },
  }
}
