#!/usr/bin/env node
// The gatehouse command line: serve, kubeconfig, credential, check-config.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, configJsonSchema, loadConfig } from '../config/index.ts'
import { startServer } from '../server.ts'
import { auditQueryFromParams } from '../admin/server.ts'
import { loadPolicies, PolicyCompileError, PolicyLoadError, PolicySet } from '../policy/index.ts'
import { formatTable, listRecords, showRecord } from './audit.ts'
import { execCredential } from './credential.ts'
import { formatResult, loadTestFile, runPolicyTests, type PolicyTestCase } from './policy-test.ts'
import { buildKubeconfig } from './kubeconfig.ts'
import { sessionQueryFromParams } from '../admin/server.ts'
import { queryFromParams } from '../admin/http.ts'
import { approvalQuerySchema } from '../approval/record.ts'
import { decideApproval, formatApprovals, getApproval, listApprovals } from './approvals.ts'
import { replay, transcript } from '../sessions/replay.ts'
import { formatSessions, getSession, killSession, listSessions, loadRecording } from './sessions.ts'

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
  policy test (--policies PATH)... [--file CASES.yaml]
             [--identity NAME [--group G]... [--issuer URL] [--claim K=V]... [--cluster NAME]
              [--object FILE] "METHOD /path?query"...] [--output text|json]
                                          evaluate policies against requests; exit 1 when an
                                          expectation in CASES.yaml fails
  audit list --config FILE [--identity NAME|GLOB] [--cluster C] [--namespace NS] [--verb V]
             [--resource R] [--decision allow|deny] [--since 1h|ISO] [--until ISO]
             [--limit N] [--output table|jsonl]
  audit show --config FILE ID             print one audit record as JSON
  sessions list --config FILE [--identity NAME|GLOB] [--cluster C] [--namespace NS] [--pod P]
             [--kind exec|attach|portforward] [--state live|complete|terminated|incomplete]
             [--since 1h|ISO] [--until ISO] [--limit N] [--output table|jsonl]
  sessions show --config FILE ID          print one session record as JSON
  sessions replay --config FILE ID [--speed N] [--max-idle SECONDS] [--dump] [--events]
                                          play a recording: stdout and stderr as the client
                                          saw them, at the original pace (--dump: at once;
                                          --events: a timestamped transcript of every event)
  sessions kill --config FILE ID (--token-file PATH | --token-env NAME) [--admin-url URL]
                                          end a live session through the admin API
  approvals list --config FILE [--state pending|approved|denied|expired|used] [--identity NAME]
             [--cluster C] [--namespace NS] [--since 1h|ISO] [--limit N] [--output table|jsonl]
  approvals show --config FILE ID         print one approval (request, body, decisions) as JSON
  approvals approve|deny --config FILE ID [--comment TEXT] (--token-file PATH | --token-env NAME)
             [--admin-url URL]            decide through the admin API, as the token's identity
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

function policyTest(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      policies: { type: 'string', short: 'p', multiple: true },
      file: { type: 'string', short: 'f' },
      identity: { type: 'string' },
      group: { type: 'string', multiple: true },
      issuer: { type: 'string' },
      method: { type: 'string' },
      claim: { type: 'string', multiple: true },
      cluster: { type: 'string' },
      object: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
  })
  if (!values.policies?.length) fail('gatehouse policy test: --policies is required', 2)
  if (!values.file && positionals.length === 0)
    fail('gatehouse policy test: give --file CASES.yaml or requests like "GET /api/v1/pods"', 2)
  if (positionals.length && !values.identity)
    fail('gatehouse policy test: --identity is required with requests on the command line', 2)
  const set = new PolicySet(loadPolicies(values.policies))
  const cases: PolicyTestCase[] = values.file ? loadTestFile(values.file) : []
  const claims: Record<string, unknown> = {}
  for (const c of values.claim ?? []) {
    const eq = c.indexOf('=')
    if (eq < 1) fail(`gatehouse policy test: --claim ${c}: expected NAME=VALUE`, 2)
    claims[c.slice(0, eq)] = c.slice(eq + 1)
  }
  let object: unknown
  if (values.object) {
    try {
      object = JSON.parse(readFileSync(values.object, 'utf8'))
    } catch (e) {
      fail(`gatehouse policy test: --object ${values.object}: ${(e as Error).message}`, 2)
    }
  }
  for (const request of positionals) {
    if (!/^[A-Z]+ \/\S*$/.test(request))
      fail(`gatehouse policy test: '${request}': expected "METHOD /path?query"`, 2)
    cases.push({
      identity: {
        name: values.identity!,
        groups: values.group ?? [],
        method: (values.method ?? 'oidc') as PolicyTestCase['identity']['method'],
        ...(values.issuer ? { issuer: values.issuer } : {}),
        claims,
      },
      cluster: values.cluster ?? 'default',
      request,
      ...(object !== undefined ? { object } : {}),
    })
  }
  const results = runPolicyTests(set, cases)
  if (values.output === 'json') {
    for (const r of results)
      process.stdout.write(
        JSON.stringify({
          name: r.case.name,
          identity: r.case.identity.name,
          request: r.case.request,
          ...(r.decision ? { decision: r.decision } : {}),
          ...(r.error ? { error: r.error } : {}),
          ...(r.failure ? { failure: r.failure } : {}),
        }) + '\n',
      )
  } else {
    process.stdout.write(results.map(formatResult).join('\n') + '\n')
  }
  const failed = results.filter((r) => r.failure).length
  if (values.output !== 'json' && (values.file || failed))
    process.stdout.write(`\n${results.length - failed} passed, ${failed} failed\n`)
  if (failed) process.exit(1)
}

/** The filter flags of a `list` command, parsed as the admin API parses its query string. */
function parseListFilters<Q>(
  command: string,
  values: Record<string, string | boolean | undefined>,
  parse: (params: URLSearchParams) => Q,
): Q {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(values))
    if (typeof v === 'string' && !LIST_OUTPUT_FLAGS.has(k)) params.set(k, v)
  try {
    return parse(params)
  } catch (e) {
    fail(`${command}: --${(e as Error).message}`, 2)
  }
}

/** Flags of the audit and sessions commands that are not list filters. */
const LIST_OUTPUT_FLAGS = new Set([
  'config',
  'output',
  'speed',
  'max-idle',
  'token-file',
  'token-env',
  'admin-url',
])

function printList<T>(
  command: string,
  output: string | undefined,
  items: readonly T[],
  table: (items: readonly T[]) => string,
): void {
  const format = output ?? 'table'
  if (format === 'jsonl') process.stdout.write(items.map((r) => JSON.stringify(r) + '\n').join(''))
  else if (format === 'table') process.stdout.write(table(items))
  else fail(`${command}: --output ${format}: expected table or jsonl`, 2)
}

/** The options every list command (audit, sessions, approvals) shares: config, filters, output. */
const LIST_OPTIONS = {
  config: { type: 'string', short: 'c' },
  identity: { type: 'string' },
  cluster: { type: 'string' },
  namespace: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  output: { type: 'string', short: 'o' },
} as const

async function audit(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...LIST_OPTIONS,
      verb: { type: 'string' },
      resource: { type: 'string' },
      decision: { type: 'string' },
    },
  })
  if (!values.config) fail(`gatehouse audit ${sub ?? ''}: --config is required`, 2)
  const config = loadConfig(values.config)
  if (sub === 'show') {
    if (positionals.length !== 1) fail('gatehouse audit show: give one record id', 2)
    const record = await showRecord(config, positionals[0]!)
    if (!record) fail(`gatehouse audit show: no audit record ${positionals[0]}`)
    process.stdout.write(JSON.stringify(record, null, 2) + '\n')
    return
  }
  if (sub !== 'list') fail(`gatehouse audit: expected list or show\n\n${USAGE}`, 2)
  const q = parseListFilters('gatehouse audit list', values, auditQueryFromParams)
  printList('gatehouse audit list', values.output, await listRecords(config, q), formatTable)
}

async function sessions(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...LIST_OPTIONS,
      pod: { type: 'string' },
      kind: { type: 'string' },
      state: { type: 'string' },
      speed: { type: 'string' },
      'max-idle': { type: 'string' },
      dump: { type: 'boolean' },
      events: { type: 'boolean' },
      'token-file': { type: 'string' },
      'token-env': { type: 'string' },
      'admin-url': { type: 'string' },
    },
  })
  if (!values.config) fail(`gatehouse sessions ${sub ?? ''}: --config is required`, 2)
  const config = loadConfig(values.config)
  const one = async (): Promise<NonNullable<Awaited<ReturnType<typeof getSession>>>> => {
    if (positionals.length !== 1) fail(`gatehouse sessions ${sub}: give one session id`, 2)
    const s = await getSession(config, positionals[0]!)
    if (!s) fail(`gatehouse sessions ${sub}: no session ${positionals[0]}`)
    return s
  }
  if (sub === 'show') {
    process.stdout.write(JSON.stringify(await one(), null, 2) + '\n')
    return
  }
  if (sub === 'replay') {
    const s = await one()
    const { events, truncated } = await loadRecording(config, s)
    if (values.events) process.stdout.write(transcript(events))
    else {
      const speed = values.dump ? Infinity : Number(values.speed ?? '1')
      if (!(speed > 0))
        fail(`gatehouse sessions replay: --speed ${values.speed}: expected a number above 0`, 2)
      const maxIdle = values['max-idle'] === undefined ? undefined : Number(values['max-idle'])
      if (maxIdle !== undefined && !(maxIdle >= 0))
        fail(`gatehouse sessions replay: --max-idle ${values['max-idle']}: expected seconds`, 2)
      await replay(events, process, {
        speed,
        ...(maxIdle === undefined ? {} : { maxIdleSeconds: maxIdle }),
      })
    }
    if (truncated || s.state === 'incomplete')
      process.stderr.write(
        `\ngatehouse: the recording of session ${s.id} is incomplete (${s.endReason ?? 'truncated'})\n`,
      )
    return
  }
  if (sub === 'kill') {
    if (positionals.length !== 1) fail('gatehouse sessions kill: give one session id', 2)
    const tokenFile = values['token-file']
    const tokenEnv = values['token-env']
    const token = tokenFile
      ? readFileSync(tokenFile, 'utf8').trim()
      : tokenEnv
        ? (process.env[tokenEnv] ??
          fail(`gatehouse sessions kill: environment variable ${tokenEnv} is not set`, 2))
        : fail('gatehouse sessions kill: give --token-file or --token-env (an admin identity)', 2)
    const r = await killSession(config, positionals[0]!, token, {
      ...(values['admin-url'] ? { url: values['admin-url'] } : {}),
    })
    if (r.code !== 202) fail(`gatehouse sessions kill: ${r.code}: ${r.body.trim()}`)
    process.stdout.write(`session ${positionals[0]} killed\n`)
    return
  }
  if (sub !== 'list') fail(`gatehouse sessions: expected list, show, replay or kill\n\n${USAGE}`, 2)
  const q = parseListFilters('gatehouse sessions list', values, sessionQueryFromParams)
  printList('gatehouse sessions list', values.output, await listSessions(config, q), formatSessions)
}

/** The approver's (or admin's) bearer token from --token-file or --token-env. */
function tokenFrom(command: string, values: Record<string, unknown>): string {
  const tokenFile = values['token-file'] as string | undefined
  const tokenEnv = values['token-env'] as string | undefined
  if (tokenFile) return readFileSync(tokenFile, 'utf8').trim()
  if (tokenEnv)
    return (
      process.env[tokenEnv] ?? fail(`${command}: environment variable ${tokenEnv} is not set`, 2)
    )
  return fail(`${command}: give --token-file or --token-env`, 2)
}

async function approvals(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...LIST_OPTIONS,
      state: { type: 'string' },
      comment: { type: 'string' },
      'token-file': { type: 'string' },
      'token-env': { type: 'string' },
      'admin-url': { type: 'string' },
    },
  })
  const command = `gatehouse approvals ${sub ?? ''}`
  if (!values.config) fail(`${command}: --config is required`, 2)
  const config = loadConfig(values.config)
  if (sub === 'show') {
    if (positionals.length !== 1) fail(`${command}: give one approval id`, 2)
    const a = await getApproval(config, positionals[0]!)
    if (!a) fail(`${command}: no approval ${positionals[0]}`)
    process.stdout.write(JSON.stringify(a, null, 2) + '\n')
    return
  }
  if (sub === 'approve' || sub === 'deny') {
    if (positionals.length !== 1) fail(`${command}: give one approval id`, 2)
    const r = await decideApproval(
      config,
      positionals[0]!,
      sub,
      values.comment ?? '',
      tokenFrom(command, values),
      values['admin-url'] ? { url: values['admin-url'] } : {},
    )
    if (r.code !== 200) fail(`${command}: ${r.code}: ${r.body.trim()}`)
    const a = JSON.parse(r.body) as { state: string }
    process.stdout.write(
      `approval ${positionals[0]}: ${sub === 'approve' ? 'approved' : 'denied'} (now ${a.state})\n`,
    )
    return
  }
  if (sub !== 'list')
    fail(`gatehouse approvals: expected list, show, approve or deny\n\n${USAGE}`, 2)
  const params = new URLSearchParams()
  for (const k of ['identity', 'cluster', 'namespace', 'state', 'since', 'until', 'limit'] as const)
    if (values[k] !== undefined) params.set(k, values[k])
  let q
  try {
    q = queryFromParams(params, ['identity', 'cluster', 'namespace', 'state'], approvalQuerySchema)
  } catch (e) {
    fail(`${command}: --${(e as Error).message}`, 2)
  }
  printList(command, values.output, await listApprovals(config, q), formatApprovals)
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
      const config = loadConfig(values.config)
      const policies = loadPolicies(config.policies.paths)
      const set = new PolicySet(policies)
      process.stdout.write(`${values.config}: valid (${policies.length} policies)\n`)
      // what deny and approve rules cover beyond their spelling (docs/policy.md, coverage)
      for (const c of set.coverage())
        process.stdout.write(
          `  ${c.action} ${c.policy}/${c.rule} also covers:\n${c.covers.map((l) => `    - ${l}\n`).join('')}`,
        )
      return
    }
    case 'kubeconfig':
      return kubeconfig(rest)
    case 'credential':
      return credential(rest)
    case 'policy':
      if (rest[0] !== 'test') fail(`gatehouse policy: expected 'test'\n\n${USAGE}`, 2)
      return policyTest(rest.slice(1))
    case 'audit':
      return audit(rest)
    case 'sessions':
      return sessions(rest)
    case 'approvals':
      return approvals(rest)
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
  if (e instanceof ConfigError || e instanceof PolicyLoadError || e instanceof PolicyCompileError)
    fail(e.message)
  fail(`gatehouse: ${(e as Error).message}`)
})
