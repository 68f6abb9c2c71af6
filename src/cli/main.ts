#!/usr/bin/env node
// The gatehouse command line: serve, kubeconfig, credential, check-config.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, configJsonSchema, loadConfig } from '../config/index.ts'
import { startServer } from '../server.ts'
import { execCredential } from './credential.ts'
import { buildKubeconfig } from './kubeconfig.ts'

const USAGE = `usage: gatehouse <command> [options]

commands:
  serve --config FILE                     run the gateway
  check-config --config FILE              validate a configuration file and exit
  kubeconfig --config FILE --cluster NAME [--server URL] (--token-file PATH | --token-env NAME | --token TOKEN)
             [--exec-command CMD] [--namespace NS] [--output FILE]
                                          write a kubeconfig for a client of Gatehouse
  credential (--token-file PATH | --token-env NAME)
                                          kubectl exec credential plugin: print an ExecCredential
  schema                                  print the JSON Schema of gatehouse.yaml (for editors)
`

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } })
  if (!values.config) fail(`gatehouse serve: --config is required\n\n${USAGE}`, 2)
  const running = await startServer(loadConfig(values.config))
  const stop = (signal: string): void => {
    running.logger.info({ signal }, 'shutting down')
    void running.close().then(() => process.exit(0))
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

function kubeconfig(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      cluster: { type: 'string' },
      server: { type: 'string' },
      'token-file': { type: 'string' },
      'token-env': { type: 'string' },
      token: { type: 'string' },
      'exec-command': { type: 'string' },
      namespace: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
  })
  if (!values.config || !values.cluster)
    fail(`gatehouse kubeconfig: --config and --cluster are required\n\n${USAGE}`, 2)
  const config = loadConfig(values.config)
  if (!config.clusters.some((c) => c.name === values.cluster)) {
    fail(
      `gatehouse kubeconfig: ${values.config}: no cluster named '${values.cluster}' (clusters: ${config.clusters.map((c) => c.name).join(', ')})`,
    )
  }
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
    values.server ?? `https://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`
  // By default the plugin is this very CLI run by this Node binary, so no global install is needed.
  const cli = fileURLToPath(import.meta.url)
  const execFor = (flag: string, value: string) => ({
    command: values['exec-command'] ?? process.execPath,
    args: [
      ...(values['exec-command'] ? [] : [cli]),
      'credential',
      flag,
      flag === '--token-file' ? resolve(value) : value,
    ],
  })
  const exec = values['token-file']
    ? execFor('--token-file', values['token-file'])
    : values['token-env']
      ? execFor('--token-env', values['token-env'])
      : undefined
  const text = buildKubeconfig({
    gatewayUrl,
    cluster: values.cluster,
    caCertPem,
    ...(exec ? { exec } : {}),
    ...(values.token ? { token: values.token } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
  })
  if (values.output) writeFileSync(values.output, text, { mode: 0o600 })
  else process.stdout.write(text)
}

function credential(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { 'token-file': { type: 'string' }, 'token-env': { type: 'string' } },
  })
  process.stdout.write(
    execCredential({
      ...(values['token-file'] ? { tokenFile: values['token-file'] } : {}),
      ...(values['token-env'] ? { tokenEnv: values['token-env'] } : {}),
    }) + '\n',
  )
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'check-config': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' } },
      })
      if (!values.config) fail('gatehouse check-config: --config is required', 2)
      loadConfig(values.config)
      process.stdout.write(`${values.config}: valid\n`)
      return
    }
    case 'kubeconfig':
      return kubeconfig(rest)
    case 'credential':
      return credential(rest)
    case 'schema':
      process.stdout.write(configJsonSchema())
      return
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE)
      return
    default:
      fail(`gatehouse: unknown command '${command}'\n\n${USAGE}`, 2)
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof ConfigError) fail(e.message)
  fail(`gatehouse: ${(e as Error).message}`)
})
