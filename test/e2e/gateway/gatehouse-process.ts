// Gatehouse as its own process (`gatehouse serve`), for tests that must kill it (kill -9) and
// start it again on the same data directory, as an operator's supervisor would.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { repoRoot } from '../../harness/binaries.ts'
import type { ClusterInfo } from '../../harness/index.ts'
import { ALLOW_AUTHENTICATED_POLICY } from '../../harness/gatehouse.ts'
import {
  accountOfToken,
  exportGatehouseRecords,
  registerGatehouse,
} from '../../harness/gatehouse-records.ts'
import { parseConfig } from '../../../src/config/index.ts'
import { tempDir } from '../../harness/temp-dir.ts'

export interface GatehouseProcess {
  readonly dataDir: string
  readonly caFile: string
  /** The URL of the running process (changes on each start: port 0). */
  readonly url: string
  start(): Promise<void>
  /** SIGKILL: no shutdown, no flush, no spool. */
  kill9(): Promise<void>
  /** SIGTERM and wait for the exit (graceful: flush or spool); exports its records for the run's join check. */
  stop(): Promise<void>
  /** Log lines (stderr) of every run: JSON from pino, or a start failure's message. */
  readonly logs: string[]
}

export function gatehouseProcess(
  cluster: ClusterInfo,
  opts: {
    authentication: unknown
    upstreamTokenFile: string
    overrides?: Record<string, unknown>
    policies?: string[]
  },
): GatehouseProcess {
  const dataDir = tempDir('gatehouse-proc-')
  const configFile = join(dataDir, 'gatehouse.yaml')
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
      },
    ],
    policies: { paths: opts.policies ?? [ALLOW_AUTHENTICATED_POLICY], watchIntervalMs: 0 },
    logLevel: 'info',
    ...opts.overrides,
  }
  writeFileSync(configFile, JSON.stringify(raw), { mode: 0o600 })
  // the end-of-run join check reads this instance's records, as of startGatehouse's
  const account = accountOfToken(readFileSync(opts.upstreamTokenFile, 'utf8'))
  const registration = registerGatehouse(
    cluster.runDir,
    parseConfig(raw, configFile),
    account ? [account] : [],
  )
  let child: ChildProcess | undefined
  let url = ''
  const logs: string[] = []
  const exited = (): Promise<void> =>
    new Promise((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) resolve()
      else child.once('exit', () => resolve())
    })
  return {
    dataDir,
    caFile: join(dataDir, 'pki', 'ca.crt'),
    get url() {
      return url
    },
    logs,
    async start() {
      const c = spawn(
        process.execPath,
        [join(repoRoot, 'build', 'src', 'cli', 'main.js'), 'serve', '--config', configFile],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      child = c
      url = await new Promise<string>((resolve, reject) => {
        // Gatehouse logs JSON lines to stderr; a failed start prints its reason there too.
        const lines = createInterface({ input: c.stderr })
        lines.on('line', (line) => {
          logs.push(line)
          if (line.includes('"gatehouse is serving"'))
            resolve((JSON.parse(line) as { url: string }).url)
        })
        c.once('exit', (code, signal) =>
          reject(
            new Error(
              `gatehouse exited during start (${code ?? signal}): ${logs.slice(-5).join('\n')}`,
            ),
          ),
        )
      })
    },
    async kill9() {
      child?.kill('SIGKILL')
      await exited()
    },
    async stop() {
      child?.kill('SIGTERM')
      await exited()
      await exportGatehouseRecords(cluster.runDir, registration)
    },
  }
}
