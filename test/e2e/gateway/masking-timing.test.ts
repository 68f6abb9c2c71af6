// Masking whatever the timing (issue 14), with real kubectl (1.35 over WebSocket and forced onto
// SPDY, 1.32, 1.20) through Gatehouse to the real API server and the fake kubelet, which writes
// values in parts with pauses shorter and longer than the maskers' hold bound (1 s): `logs -f` of
// a log that pauses inside a card, an SSN, an AWS key and a BEGIN line; exec stdout and stderr
// (`printf "card 41111111"; sleep 0.4; printf "11111111"`); a card number typed at a terminal
// with a pause in the middle. No value, nor a half of one, reaches the client; then everything
// Gatehouse wrote is searched: its data directory (recordings decompressed, and each one's
// streams joined across events), `gatehouse sessions replay --dump`, and its PostgreSQL store.
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { kubectl, runBinary } from '../../harness/index.ts'
import { kubectlPath, repoRoot } from '../../harness/binaries.ts'
import {
  execDialects,
  filesWritten,
  namespaceWithPods,
  recordedStreams,
  Terminal,
  withoutClientGoNoise,
} from '../support.ts'
import { useGatewayEnv, type GatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `gh_e2e_mtiming_${process.pid}`
const RUN = Math.random().toString(36).slice(2, 6)
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')

const CARD = '4111111111111111'
const SSN = '078-05-1120'
const AWS = 'AKIAIOSFODNN7EXAMPLE'
const PEM_BODY = `MHcCAQEEIBkg4LVWM9nuwNSk3yBzTiming${RUN}`
const PEM = `-----BEGIN EC PRIVATE KEY-----\n${PEM_BODY}\n-----END EC PRIVATE KEY-----`
/** Whole values: in nothing Gatehouse sends or keeps. */
const WHOLE = [CARD, SSN, AWS, PEM]
/**
 * Their parts on either side of a pause: in nothing the client receives nor in any recorded
 * stream (a marker such as `AKIA` or a BEGIN line may show after a pause; never the value).
 */
const PARTS = ['41111111', '11111111', '078-05', '-1120', 'IOSF', 'ODNN7EXAMPLE', PEM_BODY]

/** A log written with pauses inside its values: 0.4 s (under the bound) and 1.5 s (past it). */
const LOG_PARTS: [string, number][] = [
  ['paid with 41111111', 400],
  ['11111111 ok\nssn 078-05', 1500],
  ['-1120 ok\naws AKIAIOSF', 1500],
  ['ODNN7EXAMPLE ok\n-----BEGIN EC PRI', 1500],
  [`VATE KEY-----\n${PEM_BODY}\n-----END EC PRIVATE KEY-----\n`, 300],
  ['all good\n', 0],
]
/** The same values on exec stdout and stderr, in parts. */
const SCRIPT = [
  `printf 'card 41111111'`,
  'sleep 0.4',
  `printf '11111111 ok\\n'`,
  `printf 'key AKIAIOSF' >&2`,
  'sleep 1.5',
  `printf 'ODNN7EXAMPLE ok\\n' >&2`,
  `printf 'ssn 078-05'`,
  'sleep 1.5',
  `printf '-1120 ok\\n'`,
  'exit 3',
].join('; ')

function policies(dir: string): string[] {
  const out = join(dir, 'masking-timing-policies')
  mkdirSync(out, { recursive: true })
  writeFileSync(
    join(out, 'policies.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-masking-timing
spec:
  subjects:
    - name: 'github:*'
  audit: requestResponse
  rules:
    - name: everything
      action: allow
      verbs: ['*']
`,
  )
  return [out]
}

function assertNone(text: string, values: readonly string[], where: string): void {
  for (const v of values) assert.ok(!text.includes(v), `${v} in clear in ${where}:\n${text}`)
}

async function sessionsIn(env: GatewayEnv, namespace: string, n = 1) {
  const store = env.gatehouse.server.stores.sessions
  const deadline = Date.now() + 15_000
  for (;;) {
    const ended = (await store.querySessions({ namespace })).filter((s) => s.state !== 'live')
    if (ended.length >= n) return ended
    if (Date.now() > deadline) throw new Error(`no ${n} ended sessions in ${namespace}`)
    await sleep(50)
  }
}

async function replayOf(env: GatewayEnv, id: string, flag: '--dump' | '--events') {
  const r = await runBinary(
    process.execPath,
    [CLI, 'sessions', 'replay', '--config', env.gatehouse.configFile, flag, id],
    { kubeconfig: '/dev/null' },
  )
  assert.equal(r.code, 0, r.stderr)
  return r.stdout + r.stderr
}

describe('masking whatever the timing, through Gatehouse', () => {
  const env = useGatewayEnv({
    policies: (_issuer, dir) => policies(dir),
    overrides: { audit: { store: { postgres: { url: PG_URL, schema: SCHEMA } } } },
  })
  const target = gatewayTarget(env)
  const namespaces: string[] = []

  after(async () => {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await client.end()
  })

  for (const version of ['1.35', '1.32', '1.20'] as const) {
    test(`kubectl ${version}: logs -f of a log that pauses inside its values`, async () => {
      const e = env()
      const ns = `gw-mtime-logs-${version.replace('.', '')}-${RUN}`
      namespaces.push(ns)
      await namespaceWithPods(e.cluster, ns, {
        app: { annotations: { 'gatehouse.test/log-parts': JSON.stringify(LOG_PARTS) } },
      })
      const kubeconfig = await target().kubeconfig(version)
      const r = await kubectl(version, ['-n', ns, 'logs', '-f', 'app'], { kubeconfig })
      assert.equal(r.code, 0, r.stderr)
      assertNone(r.stdout, [...WHOLE, ...PARTS], 'kubectl logs -f')
      // the card's pause was within the bound: masked exactly; the others masked as they stood
      // (a marker such as AKIA or the start of a BEGIN line may show after a pause)
      assert.match(
        r.stdout,
        /^paid with \[MASKED:card\] ok\nssn \[MASKED:ssn\] ok\naws (AKIA)?\[MASKED:aws-access-key\] ok\n(-----BEGIN EC PRI)?\[MASKED:private-key\]\nall good\n$/,
      )
    })
  }

  for (const version of ['1.35', '1.32', '1.20'] as const) {
    for (const dialect of execDialects(version)) {
      const tag = `${version.replace('.', '')}-${dialect.name}-${RUN}`

      test(`kubectl ${version} (${dialect.name}): exec stdout and stderr written in parts with pauses`, async () => {
        const e = env()
        const ns = `gw-mtime-exec-${tag}`
        namespaces.push(ns)
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const r = await kubectl(version, ['-n', ns, 'exec', 'box', '--', 'sh', '-c', SCRIPT], {
          kubeconfig,
          env: dialect.env,
        })
        assert.equal(r.code, 3, r.stderr)
        assertNone(r.stdout + r.stderr, [...WHOLE, ...PARTS], 'kubectl exec')
        // the card's pause was within the bound; the SSN's was not: masked as it stood, and the
        // rest of it dropped into the placeholder
        assert.equal(r.stdout, 'card [MASKED:card] ok\nssn [MASKED:ssn] ok\n')
        assert.match(
          withoutClientGoNoise(r.stderr),
          /^key (AKIA)?\[MASKED:aws-access-key\] ok\ncommand terminated with exit code 3\n$/,
        )
      })

      test(`kubectl ${version} (${dialect.name}): a card number typed at a terminal, with a pause`, async () => {
        const e = env()
        const ns = `gw-mtime-tty-${tag}`
        namespaces.push(ns)
        await namespaceWithPods(e.cluster, ns, { shell: {} })
        const kubeconfig = await target().kubeconfig(version)
        const term = new Terminal(
          [kubectlPath(version), '-n', ns, 'exec', '-it', 'shell', '--', 'sh'],
          { env: { KUBECONFIG: kubeconfig, ...dialect.env } },
        )
        try {
          await term.waitFor('# ')
          // typed as a person would, a key every 80 ms, with a 1.5 s pause after 8 digits
          const keys = `echo ${CARD}`
          for (let i = 0; i < keys.length; i++) {
            term.type(keys[i]!)
            await sleep(i === 'echo '.length + 7 ? 1500 : 80)
          }
          term.type('\r')
          await term.waitFor(/\[MASKED:card\]\r\n# $/)
          term.type('exit 0\r')
          assert.equal(await term.exited, 0)
        } finally {
          term.kill()
        }
        assertNone(term.output, [...WHOLE, ...PARTS], 'the terminal')
        // the echo of the digits shows the placeholder, and so does the shell's own output
        assert.match(term.output, /# echo \[MASKED:card\]\r\n\[MASKED:card\]\r\n# /)
        // the recording has each key before its echo (the echo may have gone out first)
        const [s] = await sessionsIn(e, ns)
        const events = await replayOf(e, s!.id, '--events')
        const lines = events.split('\n').map((l) => /^\s*[\d.]+\s+(\w+)\s+(.*)$/.exec(l))
        const firstKey = lines.findIndex((m) => m?.[1] === 'stdin')
        const firstEcho = lines.findIndex((m) => m?.[1] === 'stdout' && m[2]!.includes('e'))
        assert.ok(firstKey >= 0 && firstKey < firstEcho, events)
        assert.ok(events.includes('[MASKED:card]'), events)
      })
    }
  }

  test('nothing Gatehouse kept holds a value, nor a part of one in a recorded stream', async () => {
    const e = env()
    await sleep(500) // the audit writer's batch
    let searched = 0
    for (const { path, bytes } of filesWritten(e.gatehouse.dataDir)) {
      searched += bytes.length
      assertNone(bytes.toString('latin1'), WHOLE, path)
    }
    assert.ok(searched > 10_000, `searched only ${searched} bytes`)
    const recordings = await recordedStreams(e.gatehouse.dataDir)
    assert.ok(recordings.length >= 3 + 4 * 2, `only ${recordings.length} recordings`)
    for (const r of recordings)
      for (const code of ['o', 'e', 'i'] as const)
        assertNone(r[code], [...WHOLE, ...PARTS], `${r.path} (${code} joined)`)
    for (const ns of namespaces) {
      for (const s of await sessionsIn(e, ns))
        assertNone(await replayOf(e, s.id, '--dump'), [...WHOLE, ...PARTS], `replay ${s.id}`)
    }
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      const tables = await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
        [SCHEMA],
      )
      let rows = 0
      for (const { table_name } of tables.rows) {
        const r = await client.query<{ row: string }>(
          `SELECT t::text AS row FROM ${SCHEMA}.${table_name} t`,
        )
        for (const { row } of r.rows) {
          rows++
          assertNone(row, WHOLE, `PostgreSQL ${SCHEMA}.${table_name}`)
        }
      }
      assert.ok(rows > 20, `only ${rows} rows searched`)
    } finally {
      await client.end()
    }
  })
})
