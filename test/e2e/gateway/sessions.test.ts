// Sessions through Gatehouse with real kubectl (1.35 and 1.32 over WebSocket, 1.35 forced onto
// SPDY, 1.20 over SPDY): what the client sees is unchanged, every exec/attach/port-forward has
// a session record, and `gatehouse sessions replay` reproduces stdout and stderr byte for byte.
// Governing: a denied command never reaches the API server (its audit log is the oracle), a
// duration cap, an idle timeout and a recording limit end running sessions with a message
// kubectl prints, and an admin kill ends a live one.
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { kubectl, readAuditEvents, runBinary } from '../../harness/index.ts'
import { KUBECTL_VERSIONS, kubectlPath, repoRoot } from '../../harness/binaries.ts'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import {
  namespaceWithPods,
  Terminal,
  execDialects,
  filesWritten,
  withoutClientGoNoise,
} from '../support.ts'
import { CI_REPOSITORY, SA_NAMESPACE, useGatewayEnv, type GatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const BOT = 'db-bot'
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')

function sessionPolicies(dir: string): string[] {
  const out = join(dir, 'session-policies')
  mkdirSync(out, { recursive: true })
  writeFileSync(
    join(out, 'ci.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-sessions-ci
spec:
  subjects:
    - name: 'github:*'
  rules:
    - name: capped
      action: allow
      verbs: ['*']
      resources: ['pods/exec', 'pods/attach']
      namespaces: ['gw-sess-capped-*']
      session: { maxDuration: 2s }
    - name: idle
      action: allow
      verbs: ['*']
      resources: ['pods/exec']
      namespaces: ['gw-sess-idle-*']
      session: { idleTimeout: 2s }
    - name: small-recordings
      action: allow
      verbs: ['*']
      resources: ['pods/exec']
      namespaces: ['gw-sess-limit-*']
      session: { maxRecordingBytes: 65536 }
    - name: no-keystrokes
      action: allow
      verbs: ['*']
      resources: ['pods/exec']
      namespaces: ['gw-sess-tty-*']
      session: { recordStdin: nonInteractive }
    - name: audited-bodies
      action: allow
      verbs: ['*']
      namespaces: ['gw-sess-secrets-*']
      audit: requestResponse
    - name: port-forward-captured
      action: allow
      verbs: ['*']
      resources: ['pods/portforward']
      session: { portForwardCaptureBytes: 16 }
    - name: everything
      action: allow
      verbs: ['*']
`,
  )
  // the shipped example, pointed at the e2e identity and namespaces
  writeFileSync(
    join(out, 'db-bot.yaml'),
    readFileSync(join(repoRoot, 'examples', 'sessions', 'db-bot.yaml'), 'utf8')
      .replace('k8s:serviceaccount:backups:db-bot', `k8s:serviceaccount:${SA_NAMESPACE}:${BOT}`)
      .replaceAll('namespaces: [db]', "namespaces: ['gw-sess-bot-*']"),
  )
  return [out]
}

async function sessionsIn(env: GatewayEnv, namespace: string, n = 1): Promise<SessionRecord[]> {
  const store = env.gatehouse.server.stores.sessions
  const deadline = Date.now() + 10_000
  for (;;) {
    const found = await store.querySessions({ namespace })
    const ended = found.filter((s) => s.state !== 'live')
    if (ended.length >= n) return ended.reverse()
    if (Date.now() > deadline)
      throw new Error(
        `expected ${n} ended sessions in ${namespace}, found ${JSON.stringify(found)}`,
      )
    await sleep(50)
  }
}

/** Sets the window size of the terminal of the kubectl whose arguments mention `marker`. */
async function resizeTerminalOf(marker: string, cols: number, rows: number): Promise<void> {
  const pid = readdirSync('/proc').find((p) => {
    if (!/^\d+$/.test(p)) return false
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      return cmd[0]!.endsWith('kubectl') && cmd.includes(marker)
    } catch {
      return false
    }
  })
  assert.ok(pid, `no kubectl process for ${marker}`)
  const tty = readlinkSync(`/proc/${pid}/fd/0`)
  const r = await runBinary('stty', ['-F', tty, 'cols', String(cols), 'rows', String(rows)], {
    kubeconfig: '/dev/null',
  })
  assert.equal(r.code, 0, r.stderr)
}

/** `gatehouse sessions ARGS...`, as an operator runs it. */
function sessionsCli(...args: string[]) {
  return runBinary(process.execPath, [CLI, 'sessions', ...args], { kubeconfig: '/dev/null' })
}

async function replay(env: GatewayEnv, id: string, ...flags: string[]) {
  const r = await sessionsCli('replay', '--config', env.gatehouse.configFile, ...flags, id)
  assert.equal(r.code, 0, r.stderr)
  return r
}

describe('sessions through Gatehouse', () => {
  const env = useGatewayEnv({
    policies: (_issuer, dir) => sessionPolicies(dir),
    overrides: {
      admin: { listen: { address: '127.0.0.1', port: 0 }, subjects: [{ name: 'github:*' }] },
    },
  })
  const target = gatewayTarget(env)

  for (const version of [...KUBECTL_VERSIONS].reverse()) {
    for (const dialect of execDialects(version)) {
      const tag = `${version.replace('.', '')}-${dialect.name}-${RUN}`

      test(`kubectl ${version} (${dialect.name}): exec with stdin, recorded and replayed byte for byte`, async () => {
        const e = env()
        const ns = `gw-sess-exec-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const input = Array.from({ length: 300 }, (_, i) => `line ${i} ünïcødé`).join('\n') + '\n'
        const r = await kubectl(
          version,
          ['-n', ns, 'exec', '-i', 'box', '--', 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'],
          { kubeconfig, env: dialect.env, stdin: input },
        )
        assert.equal(r.code, 3, r.stderr)
        assert.equal(r.stdout, input)
        assert.equal(
          withoutClientGoNoise(r.stderr),
          'to-stderr\ncommand terminated with exit code 3\n',
        )

        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.kind, 'exec')
        assert.equal(s!.state, 'complete')
        assert.equal(s!.exitCode, 3)
        assert.deepEqual(s!.command, ['sh', '-c', 'cat; echo to-stderr >&2; exit 3'])
        assert.equal(s!.identity?.name, `github:${CI_REPOSITORY}`)
        assert.equal(s!.protocol.transport, dialect.name === 'ws' ? 'websocket' : 'spdy')
        const played = await replay(e, s!.id, '--dump')
        assert.equal(played.stdout, r.stdout)
        assert.equal(played.stderr, 'to-stderr\n')
        // the script is recorded: stdin events hold exactly what was piped in
        const events = await replay(e, s!.id, '--events')
        const stdin = events.stdout
          .split('\n')
          .filter((l) => / stdin {4}/.test(l))
          .map((l) => JSON.parse(l.slice(l.indexOf('"'))) as string)
          .join('')
        assert.equal(stdin, input)
        // the session joins the request's audit record (same id)
        const auditRecord = await e.gatehouse.server.audit.store.get(s!.id)
        assert.equal(auditRecord?.request?.subresource, 'exec')
      })

      test(`kubectl ${version} (${dialect.name}): interactive TTY exec, replay equals the screen, resize kept`, async () => {
        const e = env()
        const ns = `gw-sess-tty-${tag}`
        await namespaceWithPods(e.cluster, ns, { shell: {} })
        const kubeconfig = await target().kubeconfig(version)
        const term = new Terminal(
          [kubectlPath(version), '-n', ns, 'exec', '-it', 'shell', '--', 'sh'],
          {
            env: { KUBECONFIG: kubeconfig, ...dialect.env },
            cols: 100,
            rows: 30,
          },
        )
        try {
          await term.waitFor('# ')
          term.type('stty size\r')
          await term.waitFor('30 100\r\n')
          term.type('echo typed\r')
          await term.waitFor('typed\r\n# ')
          // resize the terminal mid-session, as a user dragging the window would: the kernel
          // signals kubectl (SIGWINCH), kubectl sends the new size on the resize channel
          await resizeTerminalOf(ns, 90, 20)
          // kubectl sends the new size on its own stream (SPDY) or channel, which may reach the
          // container after the next keystrokes: ask until the new size is in effect (under load
          // kubectl may first send a size between the two, e.g. 30 90)
          for (let i = 0; i < 10 && !term.output.includes('20 90\r\n'); i++) {
            term.type('stty size\r')
            await term.waitFor(/\d+ \d+\r\n# $/)
            if (!term.output.includes('20 90\r\n')) await sleep(200)
          }
          assert.ok(term.output.includes('20 90\r\n'), term.output)
          term.type('exit 4\r')
          assert.equal(await term.exited, 4)
        } finally {
          term.kill()
        }
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.tty, true)
        assert.equal(s!.exitCode, 4)
        const played = await replay(e, s!.id, '--dump')
        assert.ok(played.stdout.length > 20)
        // what the terminal showed: the session's output, then kubectl's own exit message (and,
        // under load, client-go's log line about the kubelet's ready frame first)
        const screen = withoutClientGoNoise(term.output)
        assert.ok(
          screen.startsWith(played.stdout),
          `terminal:\n${JSON.stringify(term.output)}\nreplay:\n${JSON.stringify(played.stdout)}`,
        )
        assert.match(
          screen.slice(played.stdout.length),
          /^(\r\n)?command terminated with exit code 4/,
        )
        const events = await replay(e, s!.id, '--events')
        assert.match(events.stdout, / resize {4}"100x30"/)
        assert.match(events.stdout, / resize {4}"90x20"/)
        // policy: keystrokes of interactive sessions are not recorded (their echo on stdout is)
        assert.equal(s!.recording!.stdinRecorded, false)
        assert.doesNotMatch(events.stdout, / stdin /)
      })

      test(`kubectl ${version} (${dialect.name}): attach recorded`, async () => {
        const e = env()
        const ns = `gw-sess-attach-${tag}`
        await namespaceWithPods(e.cluster, ns, { main: {} })
        const kubeconfig = await target().kubeconfig(version)
        const r = await kubectl(version, ['-n', ns, 'attach', '-i', 'main'], {
          kubeconfig,
          env: dialect.env,
          stdin: 'echo attached\nexit 0\n',
        })
        assert.equal(r.code, 0, r.stderr)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.kind, 'attach')
        const played = await replay(e, s!.id, '--dump')
        assert.equal(played.stdout, r.stdout)
      })
    }
  }

  for (const version of [...KUBECTL_VERSIONS].reverse()) {
    test(`kubectl ${version}: logs and logs -f recorded as text streams`, async () => {
      const e = env()
      const ns = `gw-sess-logs-${version.replace('.', '')}-${RUN}`
      await namespaceWithPods(e.cluster, ns, {
        app: { annotations: { 'gatehouse.test/follow': '3,100' } },
      })
      const kubeconfig = await target().kubeconfig(version)
      const plain = await kubectl(version, ['-n', ns, 'logs', 'app'], { kubeconfig })
      assert.equal(plain.code, 0, plain.stderr)
      const followed = await kubectl(version, ['-n', ns, 'logs', '-f', 'app'], { kubeconfig })
      assert.equal(followed.code, 0, followed.stderr)
      assert.match(followed.stdout, /follow line 3/)
      const missing = await kubectl(
        version,
        ['get', '--raw', `/api/v1/namespaces/${ns}/pods/app/log?container=nope`],
        { kubeconfig },
      )
      assert.notEqual(missing.code, 0)
      const sessions = await sessionsIn(e, ns, 3)
      assert.deepEqual(
        sessions.map((s) => [s.kind, s.protocol.subprotocol]),
        [
          ['log', 'log'],
          ['log', 'log follow'],
          ['log', 'log'],
        ],
      )
      assert.equal((await replay(e, sessions[0]!.id, '--dump')).stdout, plain.stdout)
      assert.equal((await replay(e, sessions[1]!.id, '--dump')).stdout, followed.stdout)
      // an error Status is not the pod's log: nothing recorded, the answer noted
      assert.equal((await replay(e, sessions[2]!.id, '--dump')).stdout, '')
      assert.match(sessions[2]!.endReason ?? '', /answered 4\d\d/)
    })
  }

  for (const [version, name, pfEnv, transport] of [
    ['1.37', 'SPDY over WebSocket', {}, 'spdy-over-websocket'],
    ['1.37', 'SPDY', { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, 'spdy'],
    ['1.35', 'SPDY over WebSocket', {}, 'spdy-over-websocket'],
    ['1.35', 'SPDY', { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, 'spdy'],
    ['1.32', 'SPDY over WebSocket', {}, 'spdy-over-websocket'],
    ['1.20', 'SPDY', {}, 'spdy'],
  ] as const) {
    if (!KUBECTL_VERSIONS.includes(version)) continue
    test(`kubectl ${version}: port-forward over ${name}: connections and bytes per port recorded`, async () => {
      const e = env()
      const ns = `gw-sess-pf-${version.replace('.', '')}-${transport}-${RUN}`
      await namespaceWithPods(e.cluster, ns, { web: {} })
      const kubeconfig = await target().kubeconfig(version)
      const abort = new AbortController()
      let out = ''
      let ready: (port: number) => void = () => undefined
      const localPort = new Promise<number>((resolve) => (ready = resolve))
      const pf = runBinary(kubectlPath(version), ['-n', ns, 'port-forward', 'pod/web', ':7000'], {
        kubeconfig,
        env: pfEnv,
        signal: abort.signal,
        timeoutMs: 60_000,
        onStdout: (d) => {
          out += d
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 7000/.exec(out)
          if (m) ready(Number(m[1]))
        },
      })
      const payload = Buffer.alloc(100_000, 'port-forward bytes ')
      try {
        const port = await localPort
        const echoed = await new Promise<Buffer>((resolve, reject) => {
          const sock = connect(port, '127.0.0.1')
          const chunks: Buffer[] = []
          let got = 0
          sock.on('data', (d: Buffer) => {
            chunks.push(d)
            got += d.length
            if (got >= payload.length) sock.end()
          })
          sock.on('error', reject)
          sock.on('close', () => resolve(Buffer.concat(chunks)))
          sock.write(payload)
        })
        assert.ok(echoed.equals(payload))
        // the session is live while kubectl runs
        const live = e.gatehouse.server.sessions.live().filter((s) => s.namespace === ns)
        assert.equal(live.length, 1)
      } finally {
        abort.abort()
        await pf
      }
      const [s] = await sessionsIn(e, ns)
      assert.equal(s!.kind, 'portforward')
      assert.equal(s!.protocol.transport, transport)
      const p = s!.ports?.find((x) => x.port === 7000)
      assert.ok(p, JSON.stringify(s))
      assert.ok(p.connections >= 1)
      assert.equal(p.bytesIn, payload.length)
      assert.equal(p.bytesOut, payload.length)
      // the first 16 bytes of each connection, each way, are in the recording
      const events = await replay(e, s!.id, '--events')
      const captured = (dir: string): string[] =>
        events.stdout
          .split('\n')
          .filter((l) => l.includes(` ${dir} `))
          .map((l) => Buffer.from(l.split('(base64) ')[1]!, 'base64').toString())
      assert.ok(captured('to-pod').includes(payload.subarray(0, 16).toString()), events.stdout)
      assert.ok(captured('from-pod').includes(payload.subarray(0, 16).toString()))
      assert.match(events.stdout, /port +\{"connection":"[^"]+","port":7000,"event":"open"\}/)
    })
  }

  describe('governing sessions (kubectl 1.37, 1.35 and 1.32; WebSocket and SPDY)', () => {
    for (const [version, dialect] of (['1.37', '1.35', '1.32'] as const).flatMap((v) =>
      execDialects(v).map((d) => [v, d] as const),
    )) {
      const tag = `${version.replace('.', '')}-${dialect.name}-${RUN}`

      test(`kubectl ${version} (${dialect.name}): a bot may run pg_dump but not a shell; the shell never reaches the API server`, async () => {
        const e = env()
        const ns = `gw-sess-bot-${tag}`
        await namespaceWithPods(e.cluster, ns, { db: {} })
        const kubeconfig = e.gatehouse.kubeconfig({
          token: await e.serviceAccountToken(BOT),
          name: `bot-${tag}`,
        })
        const denied = await kubectl(
          version,
          ['-n', ns, 'exec', 'db', '--', 'sh', '-c', 'cat /etc/passwd'],
          {
            kubeconfig,
            env: dialect.env,
          },
        )
        assert.notEqual(denied.code, 0)
        // kubectl 1.37 prints the refusal's message alone (earlier ones name its reason too)
        assert.match(
          denied.stderr,
          version === '1.37'
            ? /^error: unable to upgrade connection: Gatehouse denied k8s:serviceaccount:\S+:db-bot to create pods\/exec/m
            : /Forbidden/,
        )
        assert.match(denied.stderr, /bots may run pg_dump, not a shell/)
        assert.match(denied.stderr, /command: "sh -c cat \/etc\/passwd"/)
        assert.match(denied.stderr, /policy 'db-bot', rule 'no-shells'/)

        const allowed = await kubectl(
          version,
          ['-n', ns, 'exec', 'db', '--', 'pg_dump', '--schema-only'],
          {
            kubeconfig,
            env: dialect.env,
          },
        )
        // the fake container has no pg_dump: what matters is that it ran in the pod
        assert.doesNotMatch(allowed.stderr, /Forbidden/)
        const [s] = await sessionsIn(e, ns)
        assert.deepEqual(s!.command, ['pg_dump', '--schema-only'])
        assert.equal(s!.decision?.rule, 'pg-dump-only')

        // the API server's audit log: the pg_dump exec arrived, the shell never did
        await sleep(1000)
        const execs = readAuditEvents(e.cluster.auditLogPath).filter(
          (ev) => ev.objectRef?.namespace === ns && ev.objectRef?.subresource === 'exec',
        )
        assert.ok(execs.some((ev) => ev.requestURI.includes('command=pg_dump')))
        assert.ok(!execs.some((ev) => ev.requestURI.includes('command=sh')))
      })

      test(`kubectl ${version} (${dialect.name}): a duration cap ends a running session with a message kubectl prints`, async () => {
        const e = env()
        const ns = `gw-sess-capped-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const started = Date.now()
        const r = await kubectl(
          version,
          ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo started; sleep 30'],
          {
            kubeconfig,
            env: dialect.env,
            timeoutMs: 20_000,
          },
        )
        assert.ok(Date.now() - started < 15_000, 'the session outlived its cap')
        assert.notEqual(r.code, 0)
        assert.equal(r.stdout, 'started\n')
        assert.match(r.stderr, /maximum duration of 2s/)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.state, 'terminated')
        assert.match(s!.endReason ?? '', /maximum duration of 2s/)
        const played = await replay(e, s!.id, '--dump')
        assert.equal(played.stdout, 'started\n')
      })

      test(`kubectl ${version} (${dialect.name}): an idle session is ended after its idle timeout`, async () => {
        const e = env()
        const ns = `gw-sess-idle-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const r = await kubectl(
          version,
          ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo a; sleep 1; echo b; sleep 30'],
          {
            kubeconfig,
            env: dialect.env,
            timeoutMs: 20_000,
          },
        )
        assert.equal(r.stdout, 'a\nb\n')
        assert.match(r.stderr, /idle for 2s/)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.state, 'terminated')
      })

      test(`kubectl ${version} (${dialect.name}): a session whose recording would pass its limit is ended (fail closed)`, async () => {
        const e = env()
        const ns = `gw-sess-limit-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const r = await kubectl(version, ['-n', ns, 'exec', 'box', '--', 'bytes', '1000000'], {
          kubeconfig,
          env: dialect.env,
          timeoutMs: 20_000,
        })
        assert.notEqual(r.code, 0)
        assert.match(r.stderr, /recording reached the limit of 65536 bytes/)
        assert.ok(r.stdout.length < 1_000_000)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.state, 'terminated')
        assert.ok(s!.recording!.bytes <= 65536 + 200, String(s!.recording!.bytes))
      })

      test(`kubectl ${version} (${dialect.name}): an admin kills a live session; the client is told`, async () => {
        const e = env()
        const ns = `gw-sess-kill-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const running = kubectl(
          version,
          ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo running; sleep 30'],
          {
            kubeconfig,
            env: dialect.env,
            timeoutMs: 30_000,
          },
        )
        let live: SessionRecord | undefined
        const deadline = Date.now() + 10_000
        while (!live && Date.now() < deadline) {
          live = e.gatehouse.server.sessions.live().find((s) => s.namespace === ns)
          if (!live) await sleep(50)
        }
        assert.ok(live, 'the session never went live')
        const tokenFile = join(e.dir, `admin-token-${tag}`)
        writeFileSync(tokenFile, await e.issuer.mintGitHubActions({ repository: CI_REPOSITORY }), {
          mode: 0o600,
        })
        const adminUrl = e.gatehouse.server.admin!.url
        const kill = await sessionsCli(
          'kill',
          '--config',
          e.gatehouse.configFile,
          '--admin-url',
          adminUrl,
          '--token-file',
          tokenFile,
          live.id,
        )
        assert.equal(kill.code, 0, kill.stderr)
        const r = await running
        assert.notEqual(r.code, 0)
        assert.match(r.stderr, /terminated by a Gatehouse administrator/)
        const [s] = await sessionsIn(e, ns)
        assert.equal(s!.state, 'terminated')
        assert.match(s!.endReason ?? '', /killed by github:/)
        // a second kill: the session is over
        const again = await sessionsCli(
          'kill',
          '--config',
          e.gatehouse.configFile,
          '--admin-url',
          adminUrl,
          '--token-file',
          tokenFile,
          live.id,
        )
        assert.equal(again.code, 1)
        assert.match(again.stderr, /already ended/)
      })
    }
  })

  test('no planted secret is kept in clear by Gatehouse: recordings (stdout, stderr, stdin, logs) and audit bodies are masked', async () => {
    const e = env()
    const ns = `gw-sess-secrets-${RUN}`
    await namespaceWithPods(e.cluster, ns, {
      box: {},
      app: { annotations: { 'gatehouse.test/follow': '1,10' } },
    })
    const kubeconfig = await target().kubeconfig('1.35')
    const planted = {
      card: '4111 1111 1111 1111',
      ssn: '078-05-1120',
      aws: 'AKIAIOSFODNN7EXAMPLE',
      key: 'MHcCAQEEIBkg4LVWM9nuwNSk3yBzPLANTED',
      stdin: 'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
    }
    const pem = `-----BEGIN EC PRIVATE KEY-----\n${planted.key}\n-----END EC PRIVATE KEY-----`
    const r = await kubectl(
      '1.35',
      [
        '-n',
        ns,
        'exec',
        '-i',
        'box',
        '--',
        'sh',
        '-c',
        `echo card ${planted.card}; echo ssn ${planted.ssn} >&2; echo '${pem}'; cat; echo key=${planted.aws}`,
      ],
      { kubeconfig, stdin: `token ${planted.stdin}\n` },
    )
    assert.equal(r.code, 0, r.stderr)
    // the client sees them masked too (session-masking.test.ts covers every client and dialect)
    assert.match(r.stdout, /^card \[MASKED:card\]\n/)
    assert.doesNotMatch(r.stdout + r.stderr, /4111 1111 1111 1111|078-05-1120/)
    const [s] = await sessionsIn(e, ns)
    assert.ok((s!.recording!.masked ?? 0) >= 5, JSON.stringify(s!.recording))
    const events = (await replay(e, s!.id, '--events')).stdout
    for (const kind of ['card', 'ssn', 'private-key', 'aws-access-key', 'github-token'])
      assert.match(events, new RegExp(`\\[MASKED:${kind}\\]`), events)
    // a ConfigMap written with a card number, audited with its body
    const cm = await kubectl(
      '1.35',
      ['-n', ns, 'create', 'configmap', 'billing', `--from-literal=card=${planted.card}`],
      { kubeconfig },
    )
    assert.equal(cm.code, 0, cm.stderr)
    const followed = await kubectl('1.35', ['-n', ns, 'logs', 'app'], { kubeconfig })
    assert.equal(followed.code, 0)
    await sessionsIn(e, ns, 2)
    await sleep(500) // the audit writer's batch
    // Everything Gatehouse wrote: recordings (decompressed), the audit database, its log
    let searched = 0
    for (const { path: f, bytes } of filesWritten(e.gatehouse.dataDir)) {
      searched += bytes.length
      const text = bytes.toString('latin1')
      for (const [what, value] of Object.entries(planted))
        assert.ok(!text.includes(value), `${what} (${value}) in clear in ${f}`)
    }
    assert.ok(searched > 100_000, `searched only ${searched} bytes`)
    const audit = await e.gatehouse.server.audit.store.query({
      namespace: ns,
      resource: 'configmaps',
    })
    const created = audit.find((a) => a.request?.verb === 'create')
    assert.ok(created?.requestBody && 'data' in created.requestBody, JSON.stringify(created))
    // kubectl 1.35 writes protobuf: the kept body is base64, masked byte for byte
    const kept = Buffer.from(created.requestBody.data, created.requestBody.encoding).toString(
      'latin1',
    )
    assert.match(kept, /\[MASKED:card\]/)
    assert.equal(created.requestBody.masked, 1)
  })

  test('sessions list filters by namespace and kind; show prints the record', async () => {
    const e = env()
    const ns = `gw-sess-list-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const kubeconfig = await target().kubeconfig('1.35')
    await kubectl('1.35', ['-n', ns, 'exec', 'box', '--', 'echo', 'listed'], { kubeconfig })
    const [s] = await sessionsIn(e, ns)
    const list = await sessionsCli(
      'list',
      '--config',
      e.gatehouse.configFile,
      '--namespace',
      ns,
      '--kind',
      'exec',
    )
    assert.equal(list.code, 0, list.stderr)
    const lines = list.stdout.trim().split('\n')
    assert.equal(lines.length, 2)
    assert.match(lines[0]!, /^STARTED +IDENTITY +KIND +POD +COMMAND/)
    assert.match(
      lines[1]!,
      new RegExp(`exec +${ns}/box:main +echo listed .*complete +0 .*${s!.id}$`),
    )
    // the admin API serves the recording itself (gzip asciicast) to an authenticated admin
    const { Agent, request } = await import('undici')
    const agent = new Agent({ connect: { ca: readFileSync(e.gatehouse.caFile) } })
    try {
      const res = await request(
        `${e.gatehouse.server.admin!.url}/api/v1/sessions/${s!.id}/recording`,
        {
          dispatcher: agent,
          headers: {
            authorization: `Bearer ${await e.issuer.mintGitHubActions({ repository: CI_REPOSITORY })}`,
          },
        },
      )
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['content-type'], 'application/gzip')
      const cast = gunzipSync(Buffer.from(await res.body.arrayBuffer())).toString()
      assert.match(cast, /"o","listed\\n"/)
      const anonymous = await request(
        `${e.gatehouse.server.admin!.url}/api/v1/sessions/${s!.id}/recording`,
        {
          dispatcher: agent,
        },
      )
      await anonymous.body.dump()
      assert.equal(anonymous.statusCode, 401)
    } finally {
      await agent.close()
    }
    const show = await sessionsCli('show', '--config', e.gatehouse.configFile, s!.id)
    assert.equal((JSON.parse(show.stdout) as SessionRecord).id, s!.id)
    const bad = await sessionsCli('list', '--config', e.gatehouse.configFile, '--state', 'running')
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--state/)
  })
})
