// k9s (built from the Go module proxy) driven through tmux against Gatehouse, as a person at a
// terminal: the pod list (and a pod created meanwhile shows up), a pod's logs, a shell into a
// pod (k9s runs `kubectl exec -it`: a TTY session Gatehouse records and `gatehouse sessions
// replay` shows), and three k9s and three kubectl clients at once for two minutes while pods
// come and go: every k9s keeps up, no watch ends, no kubectl call fails (users of a peer
// gateway report dropped k9s sessions under several concurrent users).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminClient, kubectl, runBinary } from '../../harness/index.ts'
import { kubectlPath, repoRoot } from '../../harness/binaries.ts'
import { createRunningPod } from '../../harness/cluster.ts'
import { goClient } from '../../harness/go-clients.ts'
import { startK9s } from '../../harness/k9s.ts'
import { TmuxServer, type TmuxPane } from '../../harness/tmux.ts'
import { namespaceWithPods } from '../support.ts'
import { CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CLI = join(repoRoot, 'build', 'src', 'cli', 'main.js')
const CONCURRENT_MS = Number(process.env['GATEHOUSE_K9S_CONCURRENT_MS'] ?? 120_000)
/** What k9s shows when it lost the API server (its flash line and its log). */
const TROUBLE =
  /connection refused|connection reset|unexpected EOF|broken pipe|i\/o timeout|unable to connect|TLS handshake|no connection|Dial failed/i

describe('k9s through Gatehouse (tmux)', () => {
  const env = useGatewayEnv()
  let tmux: TmuxServer
  const kubectlDir = (): string => dirname(kubectlPath('1.35'))

  before(
    async () => {
      await goClient('k9s') // built here when the cache lacks it (about 30 minutes on 2 cores)
      tmux = new TmuxServer(env().dir)
    },
    { timeout: 90 * 60_000 },
  )
  after(() => tmux?.kill())

  async function kubeconfigFor(e: GatewayEnv, name: string): Promise<string> {
    const token = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: CI_REPOSITORY.split('/')[0],
      expiresInSeconds: 3600,
    })
    return e.gatehouse.kubeconfig({ token, name })
  }

  async function k9s(e: GatewayEnv, name: string, namespace: string) {
    return startK9s(tmux, {
      name,
      kubeconfig: await kubeconfigFor(e, name),
      namespace,
      dir: e.dir,
      kubectlDir: kubectlDir(),
    })
  }

  /** Moves the selection of the pod list to `pod` (k9s's filter: `/` then the name). */
  async function select(pane: TmuxPane, pod: string): Promise<void> {
    pane.type('/')
    pane.type(pod)
    pane.keys('Enter')
    await pane.waitFor((s) => s.includes(pod) && !s.includes('other-a'))
  }

  test('pod list, logs and a shell (recorded, replayable)', async () => {
    const e = env()
    const ns = `gw-k9s-${RUN}`
    await namespaceWithPods(e.cluster, ns, { web: {}, 'other-a': {} })
    const { pane } = await k9s(e, 'ui', ns)
    // the pod list
    const list = await pane.waitFor(
      (s) => s.includes('web') && s.includes('other-a') && /Running/.test(s),
      60_000,
    )
    assert.match(list, new RegExp(`pods\\(${ns}\\)`, 'i'))
    // a pod created now appears (k9s watches)
    const admin = adminClient(e.cluster)
    await createRunningPod(admin, ns, 'late')
    await pane.waitFor(/\blate\b/)

    // logs of web
    await select(pane, 'web')
    pane.keys('l')
    await pane.waitFor(new RegExp(`line \\d+ of ${ns}/web/main`))
    pane.keys('Escape')
    await pane.waitFor(new RegExp(`pods\\(${ns}\\)`, 'i'))

    // a shell into web: k9s suspends and runs kubectl exec -it ... sh -c 'command -v bash ...'
    pane.keys('s')
    await pane.waitFor(/^# ?$/m) // capture-pane drops trailing blanks
    pane.type('echo hello from k9s\r')
    await pane.waitFor(/^hello from k9s\s*$/m)
    pane.type('exit\r')
    await pane.waitFor(new RegExp(`pods\\(${ns}\\)`, 'i'))
    assert.equal(pane.dead(), false)

    // Gatehouse recorded the shell (and the log stream k9s followed)
    const store = e.gatehouse.server.stores.sessions
    let ended: Awaited<ReturnType<typeof store.querySessions>> = []
    for (let i = 0; i < 100; i++) {
      ended = (await store.querySessions({ namespace: ns })).filter((s) => s.state !== 'live')
      if (ended.some((s) => s.kind === 'exec')) break
      await sleep(100)
    }
    const execs = ended.filter((s) => s.kind === 'exec')
    assert.equal(execs.length, 1, 'one recorded shell')
    assert.ok(
      ended.some((s) => s.kind === 'log' && s.pod === 'web'),
      'the log stream is recorded',
    )
    const s = execs[0]!
    assert.equal(s.tty, true)
    assert.equal(s.pod, 'web')
    const played = await runBinary(
      process.execPath,
      [CLI, 'sessions', 'replay', '--config', e.gatehouse.configFile, '--dump', s.id],
      { kubeconfig: '/dev/null' },
    )
    assert.equal(played.code, 0, played.stderr)
    assert.match(played.stdout, /echo hello from k9s\r\nhello from k9s\r\n/)
    pane.keys('C-c')
  })

  test(`three k9s and three kubectl clients at once for ${CONCURRENT_MS / 1000}s: none drops`, async () => {
    const e = env()
    const ns = `gw-k9s-many-${RUN}`
    await namespaceWithPods(e.cluster, ns, { 'seed-0': {} })
    const admin = adminClient(e.cluster)
    const panes = await Promise.all([0, 1, 2].map((i) => k9s(e, `many-${i}`, ns)))
    for (const p of panes) await p.pane.waitFor(/seed-0/, 60_000)

    // kubectl: two watches that must stay open, one polling loop whose calls must all succeed
    const kc = await kubeconfigFor(e, 'kubectl-many')
    const watches = [0, 1].map(() => {
      const child = spawn(
        kubectlPath('1.35'),
        ['--kubeconfig', kc, '-n', ns, 'get', 'pods', '-w', '-o', 'name'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let out = ''
      let err = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
      return { child, exited, out: () => out, err: () => err, done: false }
    })
    for (const w of watches) void w.exited.then(() => (w.done = true))
    let polls = 0
    const pollFailures: string[] = []
    const deadline = Date.now() + CONCURRENT_MS
    const poller = (async () => {
      while (Date.now() < deadline) {
        const r = await kubectl('1.35', ['-n', ns, 'get', 'pods', '-o', 'name'], { kubeconfig: kc })
        polls++
        if (r.code !== 0) pollFailures.push(r.stderr)
        await sleep(1000)
      }
    })()

    // pods come and go while they all watch; every k9s shows each new pod
    let n = 0
    const troubles: string[] = []
    while (Date.now() < deadline - 10_000) {
      const name = `burst-${++n}`
      await createRunningPod(admin, ns, name)
      if (n > 2)
        await admin.raw(
          'DELETE',
          `/api/v1/namespaces/${ns}/pods/burst-${n - 2}?gracePeriodSeconds=0`,
        )
      for (const p of panes) {
        const screen = await p.pane.waitFor(new RegExp(`\\b${name}\\b`), 20_000)
        if (TROUBLE.test(screen)) troubles.push(`${p.pane.name}:\n${screen}`)
        assert.equal(p.pane.dead(), false, `${p.pane.name} exited`)
      }
      for (const w of watches) assert.equal(w.done, false, `a kubectl watch ended: ${w.err()}`)
      await sleep(8000)
    }
    await poller
    assert.deepEqual(troubles, [], 'no k9s showed a lost connection')
    assert.deepEqual(pollFailures, [], 'every kubectl get succeeded')
    assert.ok(polls > CONCURRENT_MS / 3000, `polled ${polls} times`)
    for (const w of watches) {
      assert.equal(w.done, false, `a kubectl watch ended: ${w.err()}`)
      for (let i = 1; i <= n; i++) assert.match(w.out(), new RegExp(`pod/burst-${i}\\b`))
      w.child.kill('SIGTERM')
      await w.exited
    }
    // k9s logs what went wrong with its watches and requests: nothing but the cluster's
    // missing metrics-server
    for (const p of panes) {
      const complaints = readFileSync(p.logFile, 'utf8')
        .split('\n')
        .filter((l) => /\b(ERR|WRN|FTL)\b/.test(l) && !/metrics-server|metrics\.k8s\.io/.test(l))
      assert.deepEqual(complaints, [], `${p.pane.name}'s log`)
      p.pane.keys('C-c')
    }
  })
})
