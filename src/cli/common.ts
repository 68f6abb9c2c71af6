// What the store-reading commands share: the --config option, the list filters (parsed exactly
// as the admin API parses its query string), table or JSON-lines output made safe for the
// terminal, and the bearer token of commands that act through the admin API.
import { readFileSync } from 'node:fs'
import { loadConfig, type GatewayConfig } from '../config/index.ts'
import { fail, type OptionSpec, type Values } from './command.ts'
import { jsonForTerminal } from './terminal.ts'

export const CONFIG_OPTION = {
  config: {
    type: 'string',
    short: 'c',
    value: 'FILE',
    help: 'the Gatehouse configuration (gatehouse.yaml)',
    required: true,
  },
} as const satisfies Record<string, OptionSpec>

/** The options every list command (audit, sessions, approvals) shares: filters and output. */
export const LIST_OPTIONS = {
  ...CONFIG_OPTION,
  identity: { type: 'string', value: 'NAME', help: 'identity name, or a glob (github:org/*)' },
  cluster: { type: 'string', value: 'NAME', help: 'cluster name' },
  namespace: { type: 'string', value: 'NS', help: 'namespace' },
  since: { type: 'string', value: '1h|ISO', help: 'from this long ago or this time' },
  until: { type: 'string', value: 'ISO', help: 'until this time' },
  limit: { type: 'string', value: 'N', help: 'at most N entries, up to 10000 (default 100)' },
  output: {
    type: 'string',
    short: 'o',
    choices: ['table', 'jsonl'],
    default: 'table',
    help: 'a table or JSON lines',
  },
} as const satisfies Record<string, OptionSpec>

export const TOKEN_OPTIONS = {
  'token-file': { type: 'string', value: 'PATH', help: 'a file holding your bearer token' },
  'token-env': { type: 'string', value: 'NAME', help: 'an environment variable holding it' },
  'admin-url': {
    type: 'string',
    value: 'URL',
    help: "the admin listener, when the configuration's address is not reachable as written",
  },
} as const satisfies Record<string, OptionSpec>

export function configOf(values: Values): GatewayConfig {
  return loadConfig(values['config'] as string)
}

/** The filter flags of a list command, parsed as the admin API parses its query string. */
export function listFilters<Q>(
  command: string,
  values: Values,
  filters: readonly string[],
  parse: (params: URLSearchParams) => Q,
): Q {
  const params = new URLSearchParams()
  for (const k of [...filters, 'since', 'until', 'limit']) {
    const v = values[k]
    if (typeof v === 'string') params.set(k, v)
  }
  try {
    return parse(params)
  } catch (e) {
    fail(`${command}: --${(e as Error).message}`, 2)
  }
}

/** The items as `--output` asks (its choices, table or jsonl, are checked by the parser). */
export function printList<T>(
  values: Values,
  items: readonly T[],
  table: (items: readonly T[]) => string,
): void {
  if (values['output'] === 'jsonl')
    process.stdout.write(items.map((r) => jsonForTerminal(r) + '\n').join(''))
  else process.stdout.write(table(items))
}

export function printJson(value: unknown): void {
  process.stdout.write(jsonForTerminal(value, 2) + '\n')
}

/** The approver's (or admin's) bearer token from --token-file or --token-env. */
export function tokenFrom(command: string, values: Values): string {
  const tokenFile = values['token-file']
  const tokenEnv = values['token-env']
  if (typeof tokenFile === 'string') {
    try {
      return readFileSync(tokenFile, 'utf8').trim()
    } catch (e) {
      fail(`${command}: --token-file ${tokenFile}: ${(e as Error).message}`, 2)
    }
  }
  if (typeof tokenEnv === 'string')
    return (
      process.env[tokenEnv] ?? fail(`${command}: environment variable ${tokenEnv} is not set`, 2)
    )
  return fail(`${command}: give --token-file or --token-env`, 2)
}

export const adminUrlOf = (values: Values): { url?: string } =>
  typeof values['admin-url'] === 'string' ? { url: values['admin-url'] } : {}
