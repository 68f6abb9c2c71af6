// The command line's one parser: a tree of commands (`audit list`, `sessions replay`...), each
// with its options declared once, parsed by node's util.parseArgs (strict: an unknown or
// misspelt option is an error, never ignored), with `--help` answered by every command and
// group from the same declarations, before anything else is checked (no --config needed).
// util.parseArgs ships with Node 20 and does what we need, so no CLI library is added.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { forTerminal } from './terminal.ts'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** The value's placeholder in help (`FILE`, `N`). */
  value?: string
  help: string
  required?: boolean
}

export type Values = Record<string, string | boolean | string[] | undefined>

export interface Command {
  /** Words after `gatehouse` (`sessions replay`). */
  name: string
  summary: string
  /** Longer help text, shown by --help. */
  description?: string
  options: Record<string, OptionSpec>
  /** The positional arguments (`ID`, `"METHOD /path"...`): placeholder and how many. */
  positionals?: { name: string; min: number; max: number }
  run(values: Values, positionals: string[]): Promise<void> | void
}

/** A refusal with the exit status to leave with (2: usage, 1: the command failed). */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

export function fail(message: string, exitCode = 1): never {
  throw new CliError(message, exitCode)
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`
    const notes = [o.required ? 'required' : '', o.multiple ? 'repeatable' : ''].filter(Boolean)
    return [flag, `${o.help}${notes.length ? ` (${notes.join(', ')})` : ''}`] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length))
  return rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`)
}

export function commandHelp(c: Command): string {
  const required = Object.entries(c.options)
    .filter(([, o]) => o.required)
    .map(([n, o]) => `--${n} ${o.value ?? 'VALUE'}`)
  const pos = c.positionals
    ? c.positionals.max > 1
      ? ` ${c.positionals.name}...`
      : c.positionals.min === 0
        ? ` [${c.positionals.name}]`
        : ` ${c.positionals.name}`
    : ''
  return [
    `usage: gatehouse ${c.name}${required.length ? ` ${required.join(' ')}` : ''} [options]${pos}`,
    '',
    c.summary,
    ...(c.description ? ['', c.description] : []),
    '',
    'options:',
    ...optionLines({ ...c.options, help: { type: 'boolean', short: 'h', help: 'show this help' } }),
    '',
  ].join('\n')
}

/** The help of a group (`gatehouse sessions`) or of everything (`gatehouse`): its commands. */
export function groupHelp(prefix: string, commands: readonly Command[]): string {
  const mine = commands.filter(
    (c) => !prefix || c.name === prefix || c.name.startsWith(`${prefix} `),
  )
  const width = Math.max(...mine.map((c) => c.name.length))
  return [
    `usage: gatehouse ${prefix ? `${prefix} ` : ''}<command> [options]`,
    '',
    'commands:',
    ...mine.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `'gatehouse <command> --help' shows a command's options.`,
    '',
  ].join('\n')
}

const wantsHelp = (args: readonly string[]): boolean => {
  const end = args.indexOf('--')
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

/** Finds the command named by the first words of argv; undefined for a group or nothing. */
function find(
  commands: readonly Command[],
  argv: readonly string[],
): [Command, string[]] | undefined {
  for (const c of [...commands].sort((a, b) => b.name.length - a.name.length)) {
    const words = c.name.split(' ')
    if (words.every((w, i) => argv[i] === w)) return [c, argv.slice(words.length)]
  }
  return undefined
}

/** Parses argv and runs the command it names; prints help where asked. Throws CliError. */
export async function runCommand(
  commands: readonly Command[],
  argv: readonly string[],
  out: (text: string) => void,
): Promise<void> {
  const found = find(commands, argv)
  if (!found) {
    const group = argv[0] && commands.some((c) => c.name.startsWith(`${argv[0]} `)) ? argv[0] : ''
    if (argv.length === 0 || wantsHelp(argv) || argv[0] === 'help')
      return out(groupHelp(group, commands))
    const what = group
      ? `gatehouse ${group}: unknown command '${argv[1] ?? ''}'`
      : `gatehouse: unknown command '${argv[0]}'`
    fail(`${what}\n\n${groupHelp(group, commands)}`, 2)
  }
  const [command, rest] = found
  if (wantsHelp(rest)) return out(commandHelp(command))
  const where = `gatehouse ${command.name}`
  let parsed: { values: Values; positionals: string[] }
  try {
    const options: ParseArgsConfig['options'] = Object.fromEntries(
      Object.entries(command.options).map(([n, o]) => [
        n,
        {
          type: o.type,
          ...(o.short ? { short: o.short } : {}),
          ...(o.multiple ? { multiple: true } : {}),
        },
      ]),
    )
    const r = parseArgs({
      args: [...rest],
      options,
      allowPositionals: command.positionals !== undefined,
      strict: true,
    })
    parsed = { values: r.values as Values, positionals: r.positionals }
  } catch (e) {
    fail(`${where}: ${(e as Error).message}\nsee '${where} --help'`, 2)
  }
  for (const [name, o] of Object.entries(command.options))
    if (o.required && parsed.values[name] === undefined)
      fail(`${where}: --${name} is required\nsee '${where} --help'`, 2)
  const p = command.positionals
  if (p && (parsed.positionals.length < p.min || parsed.positionals.length > p.max))
    fail(
      `${where}: expected ${p.min === p.max ? `${p.min}` : p.max === Infinity ? `at least ${p.min}` : `${p.min} to ${p.max}`} ${p.name} argument(s), got ${parsed.positionals.length}\nsee '${where} --help'`,
      2,
    )
  await command.run(parsed.values, parsed.positionals)
}

/** A CliError's text for stderr: safe for the terminal (it may quote what a server said). */
export function errorText(message: string): string {
  return message
    .split('\n')
    .map((l) => forTerminal(l))
    .join('\n')
}
