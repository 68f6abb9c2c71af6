// The commands that run or set up Gatehouse: serve, check-config, kubeconfig, credential, schema.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configJsonSchema } from '../config/index.ts'
import { loadPolicies, PolicySet } from '../policy/index.ts'
import { startServer } from '../server.ts'
import { fail, type Command, type Values } from './command.ts'
import { CONFIG_OPTION, configOf } from './common.ts'
import { execCredential } from './credential.ts'
import { forTerminal } from './terminal.ts'
import { buildKubeconfig } from './kubeconfig.ts'

const str = (values: Values, name: string): string | undefined => {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

function kubeconfig(values: Values): void {
  const file = str(values, 'config')!
  const cluster = str(values, 'cluster')!
  const config = configOf(values)
  if (!config.clusters.some((c) => c.name === cluster))
    fail(
      `gatehouse kubeconfig: ${file}: no cluster named '${cluster}' (clusters: ${config.clusters.map((c) => c.name).join(', ')})`,
    )
  const caFile = config.listen.tls ? undefined : join(config.dataDir, 'pki', 'ca.crt')
  let caCertPem: string
  try {
    caCertPem = readFileSync(caFile ?? '', 'utf8')
  } catch {
    fail(
      `gatehouse kubeconfig: no CA at ${caFile ?? '(a configured certificate)'}; start 'gatehouse serve' once to create it, or use a certificate your clients already trust`,
    )
  }
  const host =
    config.listen.address === '0.0.0.0' || config.listen.address === '::'
      ? '127.0.0.1'
      : config.listen.address
  const gatewayUrl =
    str(values, 'server') ??
    `https://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`
  // By default the plugin is this very CLI run by this Node binary, so no global install is needed.
  const cli = fileURLToPath(new URL('./main.js', import.meta.url))
  const execCommand = str(values, 'exec-command')
  const execFor = (flag: string, value: string) => ({
    command: execCommand ?? process.execPath,
    args: [
      ...(execCommand ? [] : [cli]),
      'credential',
      flag,
      flag === '--token-file' ? resolve(value) : value,
    ],
  })
  const tokenFile = str(values, 'token-file')
  const tokenEnv = str(values, 'token-env')
  const exec = tokenFile
    ? execFor('--token-file', tokenFile)
    : tokenEnv
      ? execFor('--token-env', tokenEnv)
      : undefined
  const token = str(values, 'token')
  const namespace = str(values, 'namespace')
  const text = buildKubeconfig({
    gatewayUrl,
    cluster,
    caCertPem,
    ...(exec ? { exec } : {}),
    ...(token ? { token } : {}),
    ...(namespace ? { namespace } : {}),
  })
  const output = str(values, 'output')
  if (output) writeFileSync(output, text, { mode: 0o600 })
  else process.stdout.write(text)
}

export const setupCommands: Command[] = [
  {
    name: 'serve',
    summary: 'run the gateway',
    options: { ...CONFIG_OPTION },
    examples: ['gatehouse serve -c gatehouse.yaml'],
    async run(values) {
      const running = await startServer(configOf(values))
      const stop = (signal: string): void => {
        running.logger.info({ signal }, 'shutting down')
        void running.close().then(() => process.exit(0))
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    },
  },
  {
    name: 'check-config',
    summary: 'validate a configuration file and the policies it names, and exit',
    options: { ...CONFIG_OPTION },
    examples: ['gatehouse check-config -c gatehouse.yaml'],
    run(values) {
      const config = configOf(values)
      const policies = loadPolicies(config.policies.paths)
      const set = new PolicySet(policies)
      process.stdout.write(`${str(values, 'config')}: valid (${policies.length} policies)\n`)
      // what deny and approve rules cover beyond their spelling (docs/policy.md, coverage)
      for (const c of set.coverage())
        process.stdout.write(
          forTerminal(`  ${c.action} ${c.policy}/${c.rule} also covers:`) +
            `\n${c.covers.map((l) => `    - ${forTerminal(l)}\n`).join('')}`,
        )
    },
  },
  {
    name: 'kubeconfig',
    summary: 'write a kubeconfig for a client of Gatehouse',
    options: {
      ...CONFIG_OPTION,
      cluster: {
        type: 'string',
        value: 'NAME',
        help: 'the cluster behind Gatehouse',
        required: true,
      },
      server: { type: 'string', value: 'URL', help: "Gatehouse's URL as clients reach it" },
      'token-file': { type: 'string', value: 'PATH', help: 'the exec plugin reads the token here' },
      'token-env': { type: 'string', value: 'NAME', help: 'the exec plugin reads this variable' },
      token: { type: 'string', value: 'TOKEN', help: 'a literal token (tests, sandboxes)' },
      'exec-command': {
        type: 'string',
        value: 'CMD',
        help: 'the plugin command (default: this CLI)',
      },
      namespace: { type: 'string', value: 'NS', help: "the context's default namespace" },
      output: {
        type: 'string',
        short: 'o',
        value: 'FILE',
        help: 'write here (mode 0600), not stdout',
      },
    },
    examples: [
      'gatehouse kubeconfig -c gatehouse.yaml --cluster prod --token-file /var/run/secrets/oidc-token -o kubeconfig',
      'gatehouse kubeconfig -c gatehouse.yaml --cluster prod --token-env ACTIONS_ID_TOKEN --namespace app',
    ],
    run: kubeconfig,
  },
  {
    name: 'credential',
    summary: "kubectl exec credential plugin: print an ExecCredential with the job's token",
    options: {
      'token-file': { type: 'string', value: 'PATH', help: 'read the token from this file' },
      'token-env': { type: 'string', value: 'NAME', help: 'read the token from this variable' },
    },
    examples: [
      'gatehouse credential --token-env ACTIONS_ID_TOKEN',
      'gatehouse credential --token-file /var/run/secrets/oidc-token',
    ],
    run(values) {
      const tokenFile = str(values, 'token-file')
      const tokenEnv = str(values, 'token-env')
      process.stdout.write(
        execCredential({
          ...(tokenFile ? { tokenFile } : {}),
          ...(tokenEnv ? { tokenEnv } : {}),
        }) + '\n',
      )
    },
  },
  {
    name: 'schema',
    summary: 'print the JSON Schema of gatehouse.yaml (for editors)',
    options: {},
    examples: ['gatehouse schema > gatehouse.schema.json'],
    run() {
      process.stdout.write(configJsonSchema())
    },
  },
]
