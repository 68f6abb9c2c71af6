// Sessions under hostile and broken conditions, through Gatehouse against the real API server:
// malformed WebSocket and SPDY frames from the client, a client that disconnects mid-frame, an
// upstream connection that resets, a 100 MB stdout stream, and a Gatehouse that is killed
// mid-session. Each time: no crash, no hang, the session record closed and marked, nothing
// leaked (open file descriptors counted before and after).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { buildKubeconfig } from '../../../src/cli/kubeconfig.ts'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { kubectl, runBinary } from '../../harness/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { exportGatehouseRecords, registerGatehouse } from '../../harness/gatehouse-records.ts'
import { freePort } from '../../harness/ports.ts'
import { namespaceWithPods } from '../support.ts'
import { authenticationConfig, CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')

function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

/** What the open descriptors are (socket, pipe, file paths), for a failure message. */
function describeFds(): string {
  const kinds = new Map<string, number>()
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '?'
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]/, '')
    } catch {
      continue
    }
    kinds.set(target, (kinds.get(target) ?? 0) + 1)
  }
  return [...kinds].map(([k, n]) => `${n} ${k}`).join(', ')
}

async function sessionsIn(
  g: RunningGatehouse,
  namespace: string,
  n = 1,
  timeoutMs = 15_000,
): Promise<SessionRecord[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = await g.server.stores.sessions.querySessions({ namespace })
    const ended = found.filter((s) => s.state !== 'live')
    if (ended.length >= n) return ended.reverse()
    if (Date.now() > deadline)
      throw new Error(`expected ${n} ended sessions in ${namespace}: ${JSON.stringify(found)}`)
    await sleep(50)
  }
}

/** A raw upgrade through Gatehouse: the 101 head, then the socket for hand-made frames. */
async function rawUpgrade(
  g: RunningGatehouse,
  token: string,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ socket: TLSSocket; head: string }> {
  const url = new URL(g.url)
  const socket = tlsConnect({
    host: url.hostname,
    port: Number(url.port),
    ca: readFileSync(g.caFile),
    ALPNProtocols: ['http/1.1'],
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    `Authorization: Bearer ${token}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ]
  socket.write(lines.join('\r\n') + '\r\n\r\n')
  let buf = Buffer.alloc(0)
  const head = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      socket.pause()
      resolve(buf.subarray(0, end).toString('latin1'))
    }
    socket.on('data', onData)
    socket.once('error', reject)
    setTimeout(() => reject(new Error('no upgrade response')), 10_000).unref()
  })
  return { socket, head }
}

function closed(socket: Socket | TLSSocket, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true)
    socket.resume()
    const t = setTimeout(() => resolve(false), timeoutMs)
    socket.once('close', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}

const WS_HEADERS = {
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
  'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
}

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4)
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!))
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked])
}

describe('sessions: robustness', () => {
  const env = useGatewayEnv()
  const ciToken = (e: GatewayEnv): Promise<string> =>
    e.issuer.mintGitHubActions({ repository: CI_REPOSITORY, repository_owner: 'octo-org' })
  let fdsBefore = 0
  let fdsBeforeText = ''
  before(async () => {
    // One session first: connection pools, the audit writer thread and key caches start on first
    // use and stay; what is counted is what sessions leave behind.
    const e = env()
    const ns = `gw-rob-warmup-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const kubeconfig = e.gatehouse.kubeconfig({ token: await ciToken(e), name: `warmup-${RUN}` })
    await kubectl('1.35', ['-n', ns, 'exec', 'box', '--', 'echo', 'warm'], { kubeconfig })
    await sessionsIn(e.gatehouse, ns)
    await sleep(500)
    fdsBefore = openFds()
    fdsBeforeText = describeFds()
  })

  test('a malformed WebSocket frame from the client ends the session, marked as a protocol error', async () => {
    const e = env()
    const ns = `gw-rob-wsbad-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const { socket, head } = await rawUpgrade(
      e.gatehouse,
      await ciToken(e),
      `/api/v1/namespaces/${ns}/pods/box/exec?command=cat&stdin=true&stdout=true`,
      WS_HEADERS,
    )
    assert.match(head, /^HTTP\/1\.1 101/)
    socket.resume()
    // a valid stdin message, then an unmasked frame (clients must mask: RFC 6455 5.1)
    socket.write(maskedFrame(2, Buffer.from('\x00hello\n')))
    await sleep(200)
    socket.write(Buffer.from([0x82, 0x03, 0x00, 0x41, 0x42]))
    assert.equal(await closed(socket), true, 'Gatehouse kept the connection open')
    const [s] = await sessionsIn(e.gatehouse, ns)
    assert.equal(s!.state, 'terminated')
    assert.match(s!.endReason ?? '', /malformed client frame: unmasked frame from the client/)
    assert.equal(s!.recording!.stdinRecorded, true)
  })

  test('a client that disconnects mid-frame: the session ends, its recording is closed and readable', async () => {
    const e = env()
    const ns = `gw-rob-wscut-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const { socket } = await rawUpgrade(
      e.gatehouse,
      await ciToken(e),
      `/api/v1/namespaces/${ns}/pods/box/exec?command=cat&stdin=true&stdout=true`,
      WS_HEADERS,
    )
    socket.resume()
    socket.write(maskedFrame(2, Buffer.from('\x00first line\n')))
    await sleep(300)
    // half a frame: the header promises 100 bytes, 3 arrive, then the client is gone
    socket.write(Buffer.from([0x82, 0x80 | 100, 1, 2, 3, 4, 0, 0x61, 0x62]))
    socket.destroy()
    const [s] = await sessionsIn(e.gatehouse, ns)
    assert.equal(s!.state, 'complete')
    assert.equal(s!.endReason, 'the client closed the session')
    const r = await runBinary(
      process.execPath,
      [CLI, 'sessions', 'replay', '--config', e.gatehouse.configFile, '--dump', s!.id],
      { kubeconfig: '/dev/null' },
    )
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'first line\n')
  })

  test('malformed SPDY frames from the client end the session, never the process', async () => {
    const e = env()
    const ns = `gw-rob-spdybad-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const { socket, head } = await rawUpgrade(
      e.gatehouse,
      await ciToken(e),
      `/api/v1/namespaces/${ns}/pods/box/exec?command=cat&stdin=true&stdout=true`,
      {
        Upgrade: 'SPDY/3.1',
        Connection: 'Upgrade',
        'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
      },
      'POST',
    )
    assert.match(head, /^HTTP\/1\.1 101/)
    socket.resume()
    // a control frame of SPDY version 2, which no SPDY/3.1 peer may send
    socket.write(Buffer.from([0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]))
    assert.equal(await closed(socket), true)
    const [s] = await sessionsIn(e.gatehouse, ns)
    assert.equal(s!.state, 'terminated')
    assert.match(s!.endReason ?? '', /malformed client frame: unsupported SPDY version 2/)
  })

  test('a 100 MB stdout stream passes whole, is recorded whole and replays whole', async () => {
    const e = env()
    const ns = `gw-rob-big-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const kubeconfig = e.gatehouse.kubeconfig({ token: await ciToken(e), name: `big-${RUN}` })
    let received = 0
    let bad = 0
    const r = await kubectl('1.35', ['-n', ns, 'exec', 'box', '--', 'bytes', '100000000', 'z'], {
      kubeconfig,
      timeoutMs: 240_000,
      onStdout: (d) => {
        received += d.length
        if (!/^z*$/.test(d)) bad++
      },
    })
    assert.equal(r.code, 0, r.stderr.slice(0, 500))
    assert.equal(received, 100_000_000)
    assert.equal(bad, 0)
    r.stdout = ''
    const [s] = await sessionsIn(e.gatehouse, ns)
    assert.equal(s!.state, 'complete')
    assert.ok(s!.bytes.upstreamToClient > 100_000_000)
    // replay: count, don't keep, 100 MB
    const child = spawn(process.execPath, [
      CLI,
      'sessions',
      'replay',
      '--config',
      e.gatehouse.configFile,
      '--dump',
      s!.id,
    ])
    let replayed = 0
    child.stdout.on('data', (d: Buffer) => (replayed += d.length))
    const code = await new Promise<number | null>((res) => child.on('close', res))
    assert.equal(code, 0)
    assert.equal(replayed, 100_000_000)
  })

  describe('an upstream connection that resets mid-session', () => {
    let relay: { server: Server; sockets: Set<Socket>; url: string }
    let g: RunningGatehouse
    before(async () => {
      const e = env()
      const target = new URL(e.cluster.server)
      const sockets = new Set<Socket>()
      const server = createServer((client) => {
        const up = tcpConnect(Number(target.port), target.hostname)
        sockets.add(client).add(up)
        client.pipe(up).pipe(client)
        const drop = (): void => {
          sockets.delete(client)
          sockets.delete(up)
          client.destroy()
          up.destroy()
        }
        client.on('error', drop).on('close', drop)
        up.on('error', drop).on('close', drop)
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      relay = { server, sockets, url: `https://127.0.0.1:${port}` }
      g = await startGatehouse(e.cluster, {
        authentication: authenticationConfig(e.cluster, e.issuer),
        upstreamTokenFile: e.upstreamTokenFile,
        clusterOverrides: { server: relay.url },
      })
    })
    after(async () => {
      await g?.stop()
      relay?.server.close()
    })

    test('the client gets an error, the session is closed and marked', async () => {
      const e = env()
      const ns = `gw-rob-reset-${RUN}`
      await namespaceWithPods(e.cluster, ns, { box: {} })
      const kubeconfig = g.kubeconfig({ token: await ciToken(e), name: `reset-${RUN}` })
      let out = ''
      const running = kubectl(
        '1.35',
        ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo before; sleep 30'],
        { kubeconfig, timeoutMs: 30_000, onStdout: (d) => (out += d) },
      )
      const deadline = Date.now() + 15_000
      while (!out.includes('before') && Date.now() < deadline) await sleep(25)
      assert.equal(out, 'before\n')
      for (const s of relay.sockets) s.resetAndDestroy()
      const started = Date.now()
      const r = await running
      assert.ok(Date.now() - started < 10_000, 'kubectl hung after the upstream reset')
      assert.notEqual(r.code, 0)
      const [s] = await sessionsIn(g, ns)
      assert.equal(s!.state, 'complete')
      assert.equal(s!.endReason, 'the session ended upstream')
    })
  })

  test('Gatehouse killed mid-session: after a restart the session is incomplete and its recording keeps what was written', async () => {
    const e = env()
    const ns = `gw-rob-crash-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const raw = JSON.parse(readFileSync(e.gatehouse.configFile, 'utf8')) as Record<string, unknown>
    const dataDir = tempDir('gatehouse-crash-')
    const port = await freePort()
    const configFile = join(dataDir, 'gatehouse.yaml')
    writeFileSync(
      configFile,
      JSON.stringify({
        ...raw,
        dataDir,
        listen: { address: '127.0.0.1', port },
        logLevel: 'info',
      }),
    )
    const registration = registerGatehouse(e.cluster.runDir, {
      audit: e.gatehouse.config.audit,
      dataDir,
    })
    const serve = () => {
      const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let log = ''
      child.stdout.on('data', (d: Buffer) => (log += d.toString()))
      child.stderr.on('data', (d: Buffer) => (log += d.toString()))
      const ready = (async () => {
        const deadline = Date.now() + 20_000
        while (!log.includes('gatehouse is serving')) {
          if (Date.now() > deadline || child.exitCode !== null)
            throw new Error(`gatehouse did not start:\n${log}`)
          await sleep(50)
        }
      })()
      return { child, ready, log: () => log }
    }
    let first = serve()
    try {
      await first.ready
      const kubeconfig = join(dataDir, 'client.kubeconfig')
      writeFileSync(
        kubeconfig,
        buildKubeconfig({
          gatewayUrl: `https://127.0.0.1:${port}`,
          cluster: 'harness',
          caCertPem: readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8'),
          token: await ciToken(e),
        }),
      )
      let out = ''
      const running = kubectl(
        '1.35',
        ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo written-before-the-crash; sleep 30'],
        { kubeconfig, timeoutMs: 30_000, onStdout: (d) => (out += d) },
      )
      const deadline = Date.now() + 15_000
      while (!out.includes('written-before') && Date.now() < deadline) await sleep(25)
      await sleep(600) // longer than the recording's flush interval
      first.child.kill('SIGKILL')
      const r = await running
      assert.notEqual(r.code, 0)
      first = serve()
      await first.ready
      assert.match(first.log(), /sessions left live by the last run are marked incomplete/)
      const list = await runBinary(
        process.execPath,
        [CLI, 'sessions', 'list', '--config', configFile, '--namespace', ns, '--output', 'jsonl'],
        { kubeconfig: '/dev/null' },
      )
      const [s] = list.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SessionRecord)
      assert.equal(s!.state, 'incomplete')
      const replayed = await runBinary(
        process.execPath,
        [CLI, 'sessions', 'replay', '--config', configFile, '--dump', s!.id],
        { kubeconfig: '/dev/null' },
      )
      assert.equal(replayed.code, 0, replayed.stderr)
      assert.equal(replayed.stdout, 'written-before-the-crash\n')
      assert.match(replayed.stderr, /the recording of session .* is incomplete/)
    } finally {
      first.child.kill('SIGKILL')
      if (first.child.exitCode === null && first.child.signalCode === null)
        await once(first.child, 'exit')
      // its data directory goes when this test file ends, before the run's join check
      await exportGatehouseRecords(e.cluster.runDir, registration)
    }
  })

  test('sessions.record: false relays sessions unrecorded (output still masked), and says so in /readyz', async () => {
    const e = env()
    const ns = `gw-rob-norec-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    // masking is policy, recording a switch: this policy masks (the fixture's does not)
    const policy = join(e.dir, `norec-${RUN}.yaml`)
    writeFileSync(
      policy,
      `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-norec
spec:
  subjects:
    - name: '*'
  rules:
    - name: everything
      action: allow
      verbs: ['*']
`,
    )
    const g = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
      overrides: { sessions: { record: false } },
      policies: [policy],
    })
    try {
      const kubeconfig = g.kubeconfig({ token: await ciToken(e), name: `norec-${RUN}` })
      const r = await kubectl('1.35', ['-n', ns, 'exec', 'box', '--', 'echo', 'unrecorded'], {
        kubeconfig,
      })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, 'unrecorded\n')
      for (const [version, env] of [
        ['1.35', {}],
        ['1.35', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }],
        ['1.20', {}],
      ] as const) {
        const card = await kubectl(
          version,
          ['-n', ns, 'exec', 'box', '--', 'sh', '-c', 'echo card 4111 1111 1111 1111; exit 3'],
          { kubeconfig, env },
        )
        assert.equal(card.code, 3, card.stderr)
        assert.equal(card.stdout, 'card [MASKED:card]\n', `${version} ${JSON.stringify(env)}`)
      }
      assert.deepEqual(await g.server.stores.sessions.querySessions({ namespace: ns }), [])
      const ready = g.server.gateway.currentWarnings().join('\n')
      assert.match(ready, /sessions\.record is false/)
    } finally {
      await g.stop()
    }
  })

  test('no file descriptor leaked by the sessions above', async () => {
    // sockets close asynchronously; give them a moment, then count
    let now = openFds()
    const deadline = Date.now() + 10_000
    while (now > fdsBefore + 2 && Date.now() < deadline) {
      await sleep(200)
      now = openFds()
    }
    assert.ok(
      now <= fdsBefore + 2,
      `open fds: ${fdsBefore} before (${fdsBeforeText}), ${now} after (${describeFds()})`,
    )
    assert.equal(env().gatehouse.server.sessions.live().length, 0)
  })
})
