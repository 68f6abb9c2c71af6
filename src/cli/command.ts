// The command line's one parser: a table of commands (`audit list`, `sessions replay`...), each
// with its options, defaults, choices, arguments and examples declared once, parsed by node's
// util.parseArgs (strict: an unknown or misspelt option is an error, never ignored). `--help`
// (or `-h`, or `gatehouse help ...`) is answered by every command and group from the same
// declarations, before anything else is checked, so it needs no --config and no file. Usage
// errors are one line naming what is wrong and the --help to read, with exit status 2.
// util.parseArgs ships with Node 20 and does what we need, so no CLI library is added.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { suggestion } from './suggest.ts'
import { forTerminal } from './terminal.ts'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** The value's placeholder in help (`FILE`, `N`); the choices joined by `|` when omitted. */
  value?: string
  /** The only values accepted, checked before the command runs. */
  choices?: readonly string[]
  /** The value when the option is not given (shown in help). */
  default?: string
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
  /** Whole command lines (`gatehouse audit list -c gatehouse.yaml`), shown by --help; each parses. */
  examples: readonly string[]
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

/** A usage error of `gatehouse <words>`: one line, pointing at that command's (or group's) help. */
function usageError(words: string, message: string): never {
  const where = `gatehouse${words ? ` ${words}` : ''}`
  const line = message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')
  fail(`${where}: ${line}; see '${where} --help'`, 2)
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' }

const placeholder = (o: OptionSpec): string => o.value ?? o.choices?.join('|') ?? 'VALUE'

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${placeholder(o)}` : ''}`
    const notes = [
      o.required ? 'required' : '',
      o.multiple ? 'repeatable' : '',
      o.default !== undefined ? `default: ${o.default}` : '',
    ].filter(Boolean)
    return [flag, `${o.help}${notes.length ? ` (${notes.join(', ')})` : ''}`] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length))
  return rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`)
}

function usageLine(c: Command): string {
  const required = Object.entries(c.options)
    .filter(([, o]) => o.required)
    .map(([n, o]) => `--${n} ${placeholder(o)}`)
  const p = c.positionals
  const pos = !p
    ? ''
    : p.max > 1
      ? ` ${p.min === 0 ? `[${p.name}...]` : `${p.name}...`}`
      : p.min === 0
        ? ` [${p.name}]`
        : ` ${p.name}`
  return `usage: gatehouse ${c.name}${required.length ? ` ${required.join(' ')}` : ''} [options]${pos}`
}

export function commandHelp(c: Command): string {
  return [
    usageLine(c),
    '',
    c.summary,
    ...(c.description ? ['', c.description] : []),
    '',
    'options:',
    ...optionLines({ ...c.options, help: HELP_OPTION }),
    '',
    'examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
  ].join('\n')
}

const inGroup = (prefix: string, c: Command): boolean =>
  !prefix || c.name === prefix || c.name.startsWith(`${prefix} `)

/** The help of a group (`gatehouse sessions`) or of everything (`gatehouse`): its commands. */
export function groupHelp(prefix: string, commands: readonly Command[]): string {
  const mine = commands.filter((c) => inGroup(prefix, c))
  const width = Math.max(...mine.map((c) => c.name.length))
  // one example for each word that can follow the prefix (`gatehouse audit`, `gatehouse serve`)
  const depth = prefix ? prefix.split(' ').length : 0
  const seen = new Set<string>()
  const examples = mine.filter((c) => {
    const next = c.name.split(' ')[depth]!
    return !seen.has(next) && seen.add(next)
  })
  const where = `gatehouse ${prefix ? `${prefix} ` : ''}`
  return [
    `usage: ${where}<command> [options]`,
    '',
    'commands:',
    ...mine.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options:',
    ...optionLines({ help: HELP_OPTION }),
    '',
    'examples:',
    ...examples.map((c) => `  ${c.examples[0]}`),
    '',
    `'${where}<command> --help' (or 'gatehouse help ${prefix ? `${prefix} ` : ''}<command>') shows a command's options.`,
    '',
  ].join('\n')
}

const wantsHelp = (args: readonly string[]): boolean => {
  const end = args.indexOf('--')
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

/** What a command line asks for: a help text to print, or a command to run with its values. */
export type Invocation =
  { help: string } | { command: Command; values: Values; positionals: string[] }

/** The command named by the first words of argv, and the words it took. */
function find(commands: readonly Command[], argv: readonly string[]): Command | undefined {
  return [...commands]
    .sort((a, b) => b.name.length - a.name.length)
    .find((c) => c.name.split(' ').every((w, i) => argv[i] === w))
}

/** The longest group (`sessions`, or '' for everything) that the first words of argv name. */
function groupOf(commands: readonly Command[], argv: readonly string[]): string {
  let group = ''
  for (const word of argv) {
    const longer = group ? `${group} ${word}` : word
    if (!commands.some((c) => c.name.startsWith(`${longer} `))) break
    group = longer
  }
  return group
}

/** Parses argv against the command table: never runs anything, never reads a file. */
export function parseCommandLine(
  commands: readonly Command[],
  argv: readonly string[],
): Invocation {
  const askedHelp = argv[0] === 'help'
  const args = askedHelp ? argv.slice(1) : argv
  const command = find(commands, args)
  if (!command) {
    const group = groupOf(commands, args)
    const depth = group ? group.split(' ').length : 0
    const rest = args.slice(depth)
    const next = [
      ...new Set(commands.filter((c) => inGroup(group, c)).map((c) => c.name.split(' ')[depth]!)),
    ]
    const first = rest[0]
    if (first === undefined || (first.startsWith('-') && (askedHelp || wantsHelp(rest))))
      return { help: groupHelp(group, commands) }
    if (first.startsWith('-'))
      usageError(group, `expected a command (${next.join(', ')}) before '${first}'`)
    usageError(group, `unknown command '${first}'${suggestion(first, next)}`)
  }
  const rest = args.slice(command.name.split(' ').length)
  if (askedHelp || wantsHelp(rest)) return { help: commandHelp(command) }
  return parseOptions(command, rest)
}

function parseOptions(command: Command, rest: readonly string[]): Invocation {
  const options: ParseArgsConfig['options'] = Object.fromEntries(
    Object.entries(command.options).map(([n, o]) => [
      n,
      {
        type: o.type,
        ...(o.short ? { short: o.short } : {}),
        ...(o.multiple ? { multiple: true } : {}),
        ...(o.default !== undefined ? { default: o.default } : {}),
      },
    ]),
  )
  let parsed: { values: Values; positionals: string[] }
  try {
    const r = parseArgs({
      args: [...rest],
      options,
      allowPositionals: command.positionals !== undefined,
      strict: true,
    })
    parsed = { values: r.values as Values, positionals: r.positionals }
  } catch (e) {
    // node's message for an unknown option goes on to explain `--`; its first sentence is enough
    const unknown = /^Unknown option '(-[^']*)'/.exec((e as Error).message)
    usageError(
      command.name,
      unknown
        ? unknown[0] +
            suggestion(unknown[1]!.replace(/^--/, ''), Object.keys(command.options), '--')
        : (e as Error).message,
    )
  }
  for (const [name, o] of Object.entries(command.options)) {
    const v = parsed.values[name]
    if (o.required && v === undefined) usageError(command.name, `--${name} is required`)
    for (const one of v === undefined || typeof v === 'boolean' ? [] : [v].flat())
      if (o.choices && !o.choices.includes(one))
        usageError(command.name, `--${name} ${one}: expected ${alternatives(o.choices)}`)
  }
  const p = command.positionals
  const n = parsed.positionals.length
  if (p && n < p.min)
    usageError(command.name, `missing ${p.name}${p.min > 1 ? ` (at least ${p.min})` : ''}`)
  if (p && n > p.max)
    usageError(command.name, `unexpected argument '${parsed.positionals[p.max]}' after ${p.name}`)
  return { command, ...parsed }
}

/** `a or b`, `a, b or c`. */
function alternatives(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`
}

/** Parses argv and runs the command it names; prints help where asked. Throws CliError. */
export async function runCommand(
  commands: readonly Command[],
  argv: readonly string[],
  out: (text: string) => void,
): Promise<void> {
  const invocation = parseCommandLine(commands, argv)
  if ('help' in invocation) return out(invocation.help)
  const { command, values, positionals } = invocation
  try {
    await command.run(values, positionals)
  } catch (e) {
    // a usage error found by the command itself (a bad --since) points at its help too
    const prefix = `gatehouse ${command.name}: `
    if (e instanceof CliError && e.exitCode === 2 && !e.message.includes('\n'))
      usageError(
        command.name,
        e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
      )
    throw e
  }
}

/** A CliError's text for stderr: safe for the terminal (it may quote what a server said). */
export function errorText(message: string): string {
  return message
    .split('\n')
    .map((l) => forTerminal(l))
    .join('\n')
}
