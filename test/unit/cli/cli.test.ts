// The gatehouse CLI as people run it (the built binary, a child process): every command and group
// answers --help on its own (no --config), unknown options are refused with the command's name,
// tables and JSON printed from records full of terminal escapes, C0/C1 controls and bidi
// overrides (in names, usernames, commands and URLs) contain none of them raw, and a reader that
// closes the pipe early (`| head`) ends the command quietly.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { CliError, parseCommandLine } from '../../../src/cli/command.ts'
import { sqliteStores } from '../../../src/stores.ts'
import { COMMANDS } from '../../../src/cli/commands.ts'
import { AsciicastWriter, localRecordingStore } from '../../../src/sessions/recording.ts'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { pendingApproval } from '../approval/records.ts'
import { record } from '../audit/records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')
const cli = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'buffer',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  })

/** Every C0 control, DEL, every C1 control, ESC sequences (CSI, OSC 52) and the bidi controls. */
const C0 = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('')
const C1 = Array.from({ length: 32 }, (_, i) => String.fromCharCode(0x80 + i)).join('')
const BIDI = '\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069'
const ESCAPES = '\x1b[8mhidden\x1b[0m\x1b[2K\r\x1b[1Aforged row\x1b]52;c;ZXZpbA==\x07\x9b31m'
const HOSTILE = `x${C0}${C1}\x7f${BIDI}${ESCAPES}\u2028\u200b\ufeffy`

/** What must never reach a terminal raw: controls (but the newline ending lines), bidi, invisibles. */
function rawProblems(out: Buffer): string[] {
  const text = out.toString('utf8')
  const found = [...text.matchAll(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu)]
    .map((m) => m[0])
    .filter((c) => c !== '\n')
  return [...new Set(found)].map((c) => `U+${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}

describe('gatehouse --help', () => {
  const groups = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))]
  for (const c of COMMANDS)
    it(`gatehouse ${c.name} --help`, () => {
      const r = cli([...c.name.split(' '), '--help'])
      assert.equal(r.status, 0, r.stderr.toString())
      const text = r.stdout.toString()
      assert.match(text, new RegExp(`^usage: gatehouse ${c.name}\\b`))
      for (const option of Object.keys(c.options)) assert.match(text, new RegExp(`--${option}\\b`))
      assert.equal(r.stderr.length, 0)
    })
  for (const g of groups.filter((g) => COMMANDS.some((c) => c.name.startsWith(`${g} `))))
    it(`gatehouse ${g} --help lists its commands`, () => {
      const r = cli([g, '--help'])
      assert.equal(r.status, 0, r.stderr.toString())
      for (const c of COMMANDS.filter((c) => c.name.startsWith(`${g} `)))
        assert.match(r.stdout.toString(), new RegExp(c.name))
    })
  it('gatehouse --help and gatehouse alone list every command', () => {
    for (const args of [['--help'], [], ['help']]) {
      const r = cli(args)
      assert.equal(r.status, 0)
      for (const c of COMMANDS) assert.match(r.stdout.toString(), new RegExp(c.name))
    }
  })
  it('refuses unknown commands and options naming the command, with status 2', () => {
    const option = cli(['approvals', 'list', '--config', 'x.yaml', '--bogus'])
    assert.equal(option.status, 2)
    assert.match(option.stderr.toString(), /^gatehouse approvals list: Unknown option '--bogus'/)
    const command = cli(['sessions', 'dance'])
    assert.equal(command.status, 2)
    assert.match(command.stderr.toString(), /gatehouse sessions: unknown command 'dance'/)
    const missing = cli(['audit', 'list'])
    assert.equal(missing.status, 2)
    assert.match(missing.stderr.toString(), /gatehouse audit list: --config is required/)
  })
})

describe('the built binary: help and usage errors', () => {
  // an empty directory and no HOME: help reads no file, wherever it runs
  const empty = tempDir('gh-cli-help-')
  const bare = (args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      cwd: empty,
      env: { PATH: process.env['PATH'] ?? '' },
      encoding: 'utf8',
      timeout: 60_000,
    })
  // the in-process walk of the whole table is command-table.test.ts; these prove the wiring
  for (const args of [['-h'], ['sessions', '-h'], ['help', 'sessions', 'replay']])
    it(`gatehouse ${args.join(' ')} prints the table's help to stdout, exit 0`, () => {
      const expected = parseCommandLine(COMMANDS, args)
      assert.ok('help' in expected)
      const r = bare(args)
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, expected.help)
      assert.equal(r.stderr, '')
    })
  for (const args of [
    ['audit', 'list'],
    ['sessions', 'dance'],
    ['audit', 'list', '-c', 'missing.yaml', '--since', 'soon'],
  ])
    it(`gatehouse ${args.join(' ')}: exit 2, one line on stderr, nothing on stdout`, () => {
      const r = bare(args)
      assert.equal(r.status, 2, r.stderr)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^gatehouse[^\n]*; see 'gatehouse [^\n]*--help'\n$/)
      if (!args.includes('--since'))
        assert.throws(
          () => parseCommandLine(COMMANDS, args),
          (e: CliError) => `${e.message}\n` === r.stderr,
        )
    })
  it('gatehouse --help into a closed pipe exits quietly', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    assert.equal(stderr, '', 'no stack trace, no message')
    assert.equal(code, 141)
  })
})

describe('CLI output from hostile records', () => {
  const dir = tempDir('gh-cli-')
  const config = join(dir, 'gatehouse.yaml')
  const sessionId = 'session-hostile'
  before(async () => {
    writeFileSync(
      config,
      `apiVersion: gatehouse.dev/v1alpha1
kind: GatewayConfig
dataDir: ${dir}
authentication:
  authenticators:
    - oidc: { issuer: https://token.actions.githubusercontent.com, audiences: [gatehouse], preset: github-actions }
clusters:
  - name: prod
    default: true
    server: https://10.0.0.1:6443
    caFile: ca.crt
    credential: { tokenFile: gatehouse.token }
`,
    )
    const stores = sqliteStores(join(dir, 'audit.db'))
    await stores.migrate()
    const records = Array.from({ length: 3000 }, (_, i) =>
      record(i, {
        identity: { name: `human:${HOSTILE}`, groups: [], method: 'oidc', claims: {} },
        request: {
          ...record(i).request!,
          name: HOSTILE,
          namespace: HOSTILE,
          isResourceRequest: i % 2 === 0,
          target: `/unauthenticated/${HOSTILE}?q=${HOSTILE}`,
        },
        decision: {
          action: 'allow',
          policy: HOSTILE,
          rule: 'r',
          auditLevel: 'metadata',
          shadow: { action: 'deny', policy: 'p', rule: HOSTILE },
        },
      }),
    )
    await stores.audit.insert(records)
    const recordings = localRecordingStore(join(dir, 'recordings'))
    const w = new AsciicastWriter(
      recordings.create(`${sessionId}.cast.gz`),
      { width: 80, height: 24, timestamp: 0, gatehouse: { session: sessionId } },
      { start: performance.now(), maxBytes: 1 << 24, onLimit: () => undefined },
    )
    for (let i = 0; i < 5000; i++) w.text('o', Buffer.from(`line ${i} ${HOSTILE}\n`))
    await w.close()
    const session: SessionRecord = {
      id: sessionId,
      kind: 'exec',
      state: 'complete',
      startedAt: new Date().toISOString(),
      replica: 'test',
      cluster: 'prod',
      identity: { name: HOSTILE, groups: [], method: 'oidc', claims: {} },
      principal: null,
      source: { address: '127.0.0.1' },
      namespace: HOSTILE,
      pod: HOSTILE,
      container: HOSTILE,
      command: ['sh', '-c', HOSTILE],
      tty: false,
      stdin: false,
      protocol: { transport: 'websocket', subprotocol: 'v5.channel.k8s.io' },
      decision: null,
      bytes: { clientToUpstream: 0, upstreamToClient: 0 },
      recording: {
        key: `${sessionId}.cast.gz`,
        format: 'asciicast-v2+gzip',
        bytes: 1,
        stdinRecorded: false,
      },
    }
    await stores.sessions.saveSession(session)
    const a = pendingApproval({ id: 'approval-hostile', justification: HOSTILE })
    a.requester.name = HOSTILE
    a.request.summary = `create configmaps named ${HOSTILE}`
    await stores.approvals.insertApproval(a)
    await stores.close()
  })
  /**
   * Each output, and how many lines it has when no value breaks a line (a raw LF inside a field
   * adds one; rawProblems cannot see it, since lines end in LF): a table's header and rows, one
   * JSON document per line, or (`'json'`) an indented document, whose lines are exactly those of
   * its own re-serialisation.
   */
  const outputs: [string, string[], number | 'json'][] = [
    ['audit list', ['audit', 'list', '--limit', '50'], 51],
    [
      'audit list --decision shadow-deny',
      ['audit', 'list', '--limit', '5', '--decision', 'shadow-deny'],
      6,
    ],
    ['audit list -o jsonl', ['audit', 'list', '--limit', '5', '-o', 'jsonl'], 5],
    ['sessions list', ['sessions', 'list'], 2],
    ['sessions show', ['sessions', 'show', sessionId], 'json'],
    ['sessions replay --events', ['sessions', 'replay', sessionId, '--events'], 5000],
    ['approvals list', ['approvals', 'list'], 2],
    ['approvals show', ['approvals', 'show', 'approval-hostile'], 'json'],
  ]
  for (const [name, args, lines] of outputs)
    it(`${name} prints no control, escape or bidi character raw`, () => {
      const r = cli([...args, '--config', config])
      assert.equal(r.status, 0, r.stderr.toString())
      assert.ok(r.stdout.length > 0)
      assert.deepEqual(rawProblems(r.stdout), [])
      assert.deepEqual(rawProblems(r.stderr), [])
      const text = r.stdout.toString()
      if (name.endsWith('show')) JSON.parse(text)
      if (name.endsWith('jsonl')) for (const line of text.trim().split('\n')) JSON.parse(line)
      // no raw LF inside a value: every line break is one the format puts there
      assert.ok(text.endsWith('\n'), 'the output ends its last line')
      const printed = text.slice(0, -1).split('\n').length
      if (lines === 'json')
        assert.equal(printed, JSON.stringify(JSON.parse(text), null, 2).split('\n').length)
      else assert.equal(printed, lines, `${printed} lines for ${lines} rows`)
      // and what it escaped is still there to read: ESC, RLO and the LF inside every value
      assert.match(text, /\\u001b\[8m/)
      assert.match(text, /\\u202e/)
      assert.ok(/\\u000a|\\n/.test(text), 'the LF inside values is printed as an escape')
    })

  it('a shadow-mode decision has its column and filter', () => {
    const r = cli([
      'audit',
      'list',
      '--config',
      config,
      '--limit',
      '2',
      '--decision',
      'shadow-deny',
    ])
    const [header, row] = r.stdout.toString().split('\n')
    assert.match(header!, /DECISION +RULE +SHADOW +CODE/)
    assert.match(row!, / deny \(p\/x\\u0000/)
    const none = cli(['audit', 'list', '--config', config, '--decision', 'shadow-allow'])
    assert.equal(none.stdout.toString().trim().split('\n').length, 1, 'only the header')
  })

  it('--limit above 10000 is refused with what the limit is', () => {
    const r = cli(['audit', 'list', '--config', config, '--limit', '20000'])
    assert.equal(r.status, 2)
    assert.match(
      r.stderr.toString(),
      /^gatehouse audit list: --limit: expected a whole number from 1 to 10000 \(the most one query returns/,
    )
  })

  for (const args of [
    ['audit', 'list', '--limit', '3000'],
    ['sessions', 'replay', sessionId, '--events'],
    ['sessions', 'replay', sessionId, '--dump'],
  ])
    it(`gatehouse ${args.slice(0, 3).join(' ')} | head exits quietly`, async () => {
      const child = spawn(process.execPath, [CLI, ...args, '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      // like head: read one chunk, then close the pipe
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
      child.stdout.destroy()
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
      assert.equal(stderr, '', 'no stack trace, no message')
      assert.equal(code, 141)
    })
})
