// The command table walked whole, in-process: every command, group and the top level answer
// --help, -h and `gatehouse help ...` with their options, defaults, choices and examples and
// without reading a file; every example in the table and every `gatehouse ...` line in the
// docs parses; every way of getting a command line wrong (unknown command, unknown or misspelt
// option, missing required option or value, a value outside the choices, missing or extra
// arguments) is a usage error: exit status 2, one line naming what is wrong and the --help to
// read. cli.test.ts drives the built binary.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  CliError,
  fail,
  parseCommandLine,
  runCommand,
  type Command,
  type Invocation,
} from '../../../src/cli/command.ts'
import { COMMANDS } from '../../../src/cli/commands.ts'
import { repoRoot } from '../../harness/binaries.ts'

const words = (c: Command): string[] => c.name.split(' ')

/** The groups (`audit`, `sessions`...) and the top level (''). */
const GROUPS = [
  '',
  ...new Set(
    COMMANDS.flatMap((c) =>
      words(c)
        .slice(0, -1)
        .map((_, i) =>
          words(c)
            .slice(0, i + 1)
            .join(' '),
        ),
    ),
  ),
]
const groupWords = (g: string): string[] => (g ? g.split(' ') : [])

function helpOf(argv: string[]): string {
  const r = parseCommandLine(COMMANDS, argv)
  assert.ok('help' in r, `${argv.join(' ')}: expected help, got a command to run`)
  return r.help
}

/** The usage error argv gives: asserts exit status 2 and one line pointing at `where`'s help. */
function usageError(argv: string[], where: string): string {
  let error: unknown
  try {
    parseCommandLine(COMMANDS, argv)
  } catch (e) {
    error = e
  }
  assert.ok(error instanceof CliError, `${argv.join(' ')}: expected a usage error`)
  assert.equal(error.exitCode, 2)
  assert.doesNotMatch(error.message, /\n/, 'one line')
  const prefix = `gatehouse${where ? ` ${where}` : ''}`
  assert.ok(error.message.startsWith(`${prefix}: `), error.message)
  assert.ok(error.message.endsWith(`; see '${prefix} --help'`), error.message)
  return error.message.slice(prefix.length + 2, -`; see '${prefix} --help'`.length)
}

function parsed(argv: string[]): Extract<Invocation, { command: Command }> {
  const r = parseCommandLine(COMMANDS, argv)
  assert.ok('command' in r, `${argv.join(' ')}: expected a command, got help`)
  return r
}

/** A shell line's words: quotes and backslashes as sh reads them, up to `#`, `>` or `|`. */
function shellWords(line: string): string[] {
  const out: string[] = []
  let word: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      word = (word ?? '') + line.slice(i + 1, end)
      i = end
    } else if (c === '"') {
      let s = ''
      for (i++; line[i] !== '"'; i++) s += line[i] === '\\' ? line[++i] : line[i]
      word = (word ?? '') + s
    } else if (c === '\\') word = (word ?? '') + line[++i]
    else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word)
      word = undefined
    } else if (word === undefined && '#>|'.includes(c)) break
    else word = (word ?? '') + c
  }
  if (word !== undefined) out.push(word)
  return out
}

/** A command line that satisfies `c`: its required options and arguments, each given once. */
function minimal(c: Command): string[] {
  const required = Object.entries(c.options)
    .filter(([, o]) => o.required)
    .flatMap(([n, o]) => [`--${n}`, o.choices?.[0] ?? 'x'])
  const args = Array.from({ length: c.positionals?.min ?? 0 }, (_, i) => `arg${i}`)
  return [...words(c), ...required, ...args]
}

describe('the command table', () => {
  it('names each command once, and no command is also a group', () => {
    const names = COMMANDS.map((c) => c.name)
    assert.equal(new Set(names).size, names.length)
    for (const g of GROUPS) assert.ok(!names.includes(g), `'${g}' is a command and a group`)
  })
  for (const c of COMMANDS)
    it(`gatehouse ${c.name}: its declarations are coherent`, () => {
      assert.ok(c.summary.length > 0)
      assert.ok(c.examples.length > 0, 'at least one example')
      assert.ok(!('help' in c.options), '--help is every command’s own')
      const shorts = Object.values(c.options).flatMap((o) => (o.short ? [o.short] : []))
      assert.ok(!shorts.includes('h'), '-h is --help')
      assert.equal(new Set(shorts).size, shorts.length, 'short options are unique')
      for (const [name, o] of Object.entries(c.options)) {
        assert.match(name, /^[a-z][a-z-]*$/)
        assert.ok(o.help.length > 0, `--${name} has help`)
        if (o.default !== undefined) {
          assert.equal(o.type, 'string', `--${name}: a default is a string option's`)
          assert.ok(!o.required, `--${name} is required and has a default`)
          if (o.choices) assert.ok(o.choices.includes(o.default), `--${name}: default in choices`)
        }
        if (o.choices) assert.equal(o.type, 'string')
      }
      if (c.positionals) assert.ok(c.positionals.min <= c.positionals.max)
    })
})

describe('--help, -h and gatehouse help, in-process', () => {
  for (const c of COMMANDS)
    it(`gatehouse ${c.name} --help shows every option, default, choice and example`, () => {
      const text = helpOf([...words(c), '--help'])
      for (const argv of [
        [...words(c), '-h'],
        ['help', ...words(c)],
        // help wins over anything else wrong on the line, and needs no --config
        [...words(c), '--no-such-option', '-h'],
        [...words(c), 'extra', 'arguments', '--help', '--config'],
      ])
        assert.equal(helpOf(argv), text, argv.join(' '))
      assert.ok(text.startsWith(`usage: gatehouse ${c.name} `), text)
      assert.match(text, /^ {2}-h, --help {2,}show this help$/m)
      for (const [name, o] of Object.entries(c.options)) {
        const line = text
          .split('\n')
          .find((l) => new RegExp(`^ {2}(-[a-z], | {4})--${name}\\b`).test(l))
        assert.ok(line, `--${name} is listed`)
        if (o.short) assert.ok(line.includes(`-${o.short}, --${name}`), line)
        if (o.default !== undefined) assert.ok(line.includes(`default: ${o.default}`), line)
        for (const choice of o.choices ?? []) assert.ok(line.includes(choice), line)
        if (o.required) {
          assert.ok(line.includes('required'), line)
          assert.ok(text.split('\n')[0]!.includes(`--${name} `), 'in the usage line')
        }
      }
      if (c.positionals) assert.ok(text.split('\n')[0]!.includes(c.positionals.name))
      assert.match(text, /\nexamples:\n/)
      for (const e of c.examples) assert.ok(text.includes(`\n  ${e}\n`), e)
    })
  for (const g of GROUPS)
    it(`gatehouse ${g ? `${g} ` : ''}--help lists its commands and an example of each`, () => {
      const text = helpOf([...groupWords(g), '--help'])
      for (const argv of [
        [...groupWords(g), '-h'],
        ['help', ...groupWords(g)],
        groupWords(g),
        [...groupWords(g), '--config', 'x.yaml', '--help'],
      ])
        assert.equal(helpOf(argv), text, argv.join(' '))
      assert.ok(text.startsWith(`usage: gatehouse ${g ? `${g} ` : ''}<command> [options]\n`))
      const mine = COMMANDS.filter((c) => !g || c.name.startsWith(`${g} `))
      for (const c of mine)
        assert.ok(
          text.split('\n').some((l) => l.startsWith(`  ${c.name} `) && l.endsWith(` ${c.summary}`)),
          c.name,
        )
      assert.ok(
        mine.some((c) => text.includes(`\n  ${c.examples[0]}\n`)),
        'an example',
      )
    })
  it('an argument after -- is an argument, not a request for help', () => {
    const r = parsed(['audit', 'show', '--config', 'x.yaml', '--', '--help'])
    assert.deepEqual(r.positionals, ['--help'])
    assert.equal(r.command.name, 'audit show')
  })
})

describe('examples parse', () => {
  for (const c of COMMANDS)
    it(`every example of gatehouse ${c.name} is a valid command line for it`, () => {
      for (const e of c.examples) {
        const argv = shellWords(e)
        assert.equal(argv.shift(), 'gatehouse', e)
        assert.equal(parsed(argv).command, c, e)
      }
    })

  it('every `gatehouse ...` line of the README and docs/ is a valid command line', () => {
    const files = [
      join(repoRoot, 'README.md'),
      ...readdirSync(join(repoRoot, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(repoRoot, 'docs', f)),
    ]
    let seen = 0
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n')
      let fenced = false
      for (let i = 0; i < lines.length; i++) {
        if (lines[i]!.startsWith('```')) fenced = !fenced
        if (!fenced || !/^(\$ )?gatehouse [a-z]/.test(lines[i]!)) continue
        let line = lines[i]!.replace(/^\$ /, '')
        while (line.endsWith('\\')) line = line.slice(0, -1) + lines[++i]!
        // `<session id>` is one placeholder argument
        const argv = shellWords(line.replace(/<[^>]+>/g, (p) => p.replace(/\s+/g, '-')))
        argv.shift()
        try {
          parsed(argv)
        } catch (e) {
          assert.fail(`${file}:${i + 1}: ${line}\n${(e as Error).message}`)
        }
        seen++
      }
    }
    assert.ok(seen >= 20, `only ${seen} command lines found`)
  })
})

describe('usage errors: status 2, one line, naming the problem and the --help to read', () => {
  it('an unknown command, at the top and in every group, with a did-you-mean', () => {
    for (const g of GROUPS) {
      assert.equal(usageError([...groupWords(g), 'no-such'], g), `unknown command 'no-such'`)
      const sub = COMMANDS.find((c) => !g || c.name.startsWith(`${g} `))!
      const next = words(sub)[groupWords(g).length]!
      const typo = next.slice(0, -1)
      assert.equal(
        usageError([...groupWords(g), typo], g),
        `unknown command '${typo}' (did you mean '${next}'?)`,
      )
      // help for an unknown command is still an unknown command
      usageError([...groupWords(g), 'no-such', '--help'], g)
      usageError(['help', ...groupWords(g), 'no-such'], g)
      assert.match(usageError([...groupWords(g), '--config', 'x.yaml'], g), /^expected a command/)
    }
  })
  for (const c of COMMANDS)
    it(`gatehouse ${c.name}: unknown, misspelt and incomplete options, arguments, choices`, () => {
      const ok = minimal(c)
      assert.equal(parsed(ok).command, c)
      assert.equal(
        usageError([...ok, '--no-such-option'], c.name),
        `Unknown option '--no-such-option'`,
      )
      assert.match(usageError([...ok, '-Z'], c.name), /^Unknown option '-Z'/)
      for (const [name, o] of Object.entries(c.options)) {
        if (name.length >= 4)
          assert.match(
            usageError([...ok, `--${name.slice(0, -1)}`], c.name),
            new RegExp(`did you mean '--${name}'\\?\\)$`),
          )
        if (o.type === 'string' && !o.multiple)
          assert.match(
            usageError([...ok, `--${name}`], c.name),
            new RegExp(`--${name}\\b.*argument missing`),
          )
        if (o.type === 'boolean')
          assert.match(usageError([...ok, `--${name}=yes`], c.name), new RegExp(`'--${name}'`))
        if (o.required) {
          const i = ok.indexOf(`--${name}`)
          const without = [...ok.slice(0, i), ...ok.slice(i + 2)]
          assert.equal(usageError(without, c.name), `--${name} is required`)
        }
        if (o.choices)
          assert.equal(
            usageError([...ok, `--${name}`, 'no-such-choice'], c.name),
            `--${name} no-such-choice: expected ${o.choices.slice(0, -1).join(', ')} or ${o.choices.at(-1)}`,
          )
        if (o.default !== undefined) assert.equal(parsed(ok).values[name], o.default)
      }
      const p = c.positionals
      if (!p) assert.match(usageError([...ok, 'extra'], c.name), /^Unexpected argument 'extra'/)
      if (p && p.min > 0) assert.equal(usageError(ok.slice(0, -p.min), c.name), `missing ${p.name}`)
      if (p && p.max < Infinity)
        assert.equal(
          usageError([...ok, ...Array.from({ length: p.max - p.min }, () => 'a'), 'extra'], c.name),
          `unexpected argument 'extra' after ${p.name}`,
        )
    })
})

describe('runCommand', () => {
  const commands: Command[] = [
    {
      name: 'x run',
      summary: 'test',
      options: {},
      examples: ['gatehouse x run'],
      run: () => fail('gatehouse x run: --since soon: expected a duration', 2),
    },
    {
      name: 'x fail',
      summary: 'test',
      options: {},
      examples: ['gatehouse x fail'],
      run: () => fail('gatehouse x fail: no record 7'),
    },
  ]
  const rejection = (argv: string[]) =>
    runCommand(commands, argv, () => assert.fail('no output')).then(
      () => assert.fail('expected an error'),
      (e: CliError) => [e.exitCode, e.message],
    )
  it("points a usage error the command finds itself at the command's help", async () => {
    assert.deepEqual(await rejection(['x', 'run']), [
      2,
      "gatehouse x run: --since soon: expected a duration; see 'gatehouse x run --help'",
    ])
  })
  it('leaves a failure of the command (status 1) as it is', async () => {
    assert.deepEqual(await rejection(['x', 'fail']), [1, 'gatehouse x fail: no record 7'])
  })
  it('a real one: audit list --since soon is refused before any file is read', async () => {
    const e = await runCommand(
      COMMANDS,
      ['audit', 'list', '--config', '/nonexistent/gatehouse.yaml', '--since', 'soon'],
      () => assert.fail('no output'),
    ).then(
      () => assert.fail('expected an error'),
      (e: CliError) => e,
    )
    assert.equal(e.exitCode, 2)
    assert.match(e.message, /^gatehouse audit list: --since: expected a duration/)
    assert.match(e.message, /; see 'gatehouse audit list --help'$/)
  })
  it('prints help through its output and runs nothing', async () => {
    let text = ''
    await runCommand(commands, ['x', 'run', '--help'], (t) => (text += t))
    assert.match(text, /^usage: gatehouse x run \[options\]/)
  })
})
