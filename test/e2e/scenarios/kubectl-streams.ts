// logs, logs -f, exec (WebSocket and SPDY, with and without a TTY), attach and port-forward
// with real kubectl, asserting exactly what the user sees and which protocol reached the kubelet.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, test } from 'node:test'
import { kubectl, KUBECTL_VERSIONS, runBinary, type KubectlVersion } from '../../harness/index.ts'
import { kubectlPath } from '../../harness/binaries.ts'
import {
  kubeletRequestsFor,
  kubeletUpgradeFor,
  namespaceWithPods,
  Terminal,
  upgradeVerbsFor,
} from '../support.ts'
import { nsName, type Target } from './target.ts'

/** The exec dialects each client version speaks, and how to force the others. */
function dialects(
  version: KubectlVersion,
): { name: string; env: Record<string, string>; upgrade: string }[] {
  if (version === '1.20') return [{ name: 'SPDY', env: {}, upgrade: 'SPDY/3.1' }]
  const out = [{ name: 'WebSocket', env: {}, upgrade: 'websocket' }]
  if (version === '1.35' || version === '1.37') {
    out.push({
      name: 'SPDY (forced)',
      env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
      upgrade: 'SPDY/3.1',
    })
  }
  return out
}

function portForwardDialects(
  version: KubectlVersion,
): { name: string; env: Record<string, string>; upgrade: string }[] {
  if (version === '1.20') return [{ name: 'SPDY', env: {}, upgrade: 'SPDY/3.1' }]
  const out = [{ name: 'SPDY over WebSocket', env: {}, upgrade: 'websocket' }]
  if (version === '1.35' || version === '1.37')
    out.push({
      name: 'SPDY (forced)',
      env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' },
      upgrade: 'SPDY/3.1',
    })
  return out
}

const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/-+$/, '')

async function echoThroughPort(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
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
}

export function kubectlStreamScenarios(target: () => Target): void {
  for (const version of KUBECTL_VERSIONS) {
    describe(`kubectl ${version}: logs`, () => {
      test('logs, --tail and logs -f', async () => {
        const t = target()
        const ns = nsName(t, 'logs', version)
        await namespaceWithPods(t.cluster, ns, {
          app: { annotations: { 'gatehouse.test/follow': '3,100' } },
        })
        const kubeconfig = await t.kubeconfig(version)
        const initial = [1, 2, 3].map((i) => `log line ${i} of ${ns}/app/main\n`).join('')
        let r = await kubectl(version, ['-n', ns, 'logs', 'app'], { kubeconfig })
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, initial)
        r = await kubectl(version, ['-n', ns, 'logs', 'app', '--tail=1'], { kubeconfig })
        assert.equal(r.stdout, `log line 3 of ${ns}/app/main\n`)
        r = await kubectl(version, ['-n', ns, 'logs', '-f', 'app'], { kubeconfig })
        assert.equal(r.code, 0, r.stderr)
        assert.equal(
          r.stdout,
          initial + [1, 2, 3].map((i) => `follow line ${i} of ${ns}/app/main\n`).join(''),
        )
      })
    })

    for (const dialect of dialects(version)) {
      describe(`kubectl ${version}: exec over ${dialect.name}`, () => {
        const scenario = `exec-${slug(dialect.name)}`

        test('non-interactive: exact stdout, stderr and exit code', async () => {
          const t = target()
          const ns = nsName(t, scenario, version)
          await namespaceWithPods(t.cluster, ns, {
            box: { containers: [{ name: 'main', env: [{ name: 'GREETING', value: 'hi' }] }] },
          })
          const kubeconfig = await t.kubeconfig(version)
          const run = async (args: string[], stdin?: string) => {
            const r = await kubectl(version, ['-n', ns, ...args], {
              kubeconfig,
              env: dialect.env,
              ...(stdin === undefined ? {} : { stdin }),
            })
            // client-go's WebSocket executor sometimes logs the kubelet's empty "connection
            // ready" frame (sent by the real kubelet's wsstream too, which the fake imitates) as
            // an unknown stream when it arrives before its streams exist. Seen once in about 30
            // CI runs (through Gatehouse, which relays frames unchanged); the output was exact.
            // It is kubectl's own log line, not the exec's output, so it is removed here.
            r.stderr = r.stderr.replace(
              /^E\d{4} [\d:.]+ +\d+ websocket\.go:\d+\] Unknown stream id \d+, discarding message\n/gm,
              '',
            )
            return r
          }

          let r = await run(['exec', 'box', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'])
          assert.equal(r.stdout, 'out\n')
          assert.equal(r.stderr, 'err\ncommand terminated with exit code 3\n')
          assert.equal(r.code, 3)

          r = await run(['exec', 'box', '--', 'echo', 'hello', 'world'])
          assert.deepEqual([r.stdout, r.stderr, r.code], ['hello world\n', '', 0])

          r = await run(['exec', 'box', '--', 'env'])
          assert.match(r.stdout, /^GREETING=hi$/m)
          assert.match(r.stdout, /^HOSTNAME=box$/m)

          const input = Array.from({ length: 200 }, (_, i) => `stdin line ${i}`).join('\n') + '\n'
          r = await run(['exec', '-i', 'box', '--', 'cat'], input)
          assert.deepEqual([r.stdout, r.stderr, r.code], [input, '', 0])

          const requests = kubeletRequestsFor(t.cluster, ns, 'box').filter((q) =>
            q.path.startsWith('/exec/'),
          )
          assert.ok(requests.length >= 4)
          const atKubelet = kubeletUpgradeFor(t.cluster, 'exec', dialect.upgrade)
          for (const q of requests) assert.equal(q.upgrade?.toLowerCase(), atKubelet.toLowerCase())
          // what the client spoke: GET for a WebSocket, POST (create) for SPDY, every request
          assert.deepEqual(
            [...new Set(upgradeVerbsFor(t.cluster, ns, 'box', 'exec'))],
            [dialect.upgrade === 'websocket' ? 'get' : 'create'],
          )
          if (dialect.upgrade === 'websocket')
            assert.ok(requests.every((q) => q.offered.includes('v5.channel.k8s.io')))
        })

        test('interactive with a TTY: echo, terminal size, exit code', async () => {
          const t = target()
          const ns = nsName(t, `${scenario}-tty`, version)
          await namespaceWithPods(t.cluster, ns, { shell: {} })
          const kubeconfig = await t.kubeconfig(version)
          const term = new Terminal(
            [kubectlPath(version), '-n', ns, 'exec', '-it', 'shell', '--', 'sh'],
            {
              env: { KUBECONFIG: kubeconfig, ...dialect.env },
              cols: 132,
              rows: 43,
            },
          )
          try {
            await term.waitFor('# ')
            term.type('stty size\r')
            await term.waitFor('43 132\r\n')
            term.type('echo typed\r')
            await term.waitFor('typed\r\n# ')
            term.type('exit 4\r')
            assert.equal(await term.exited, 4)
          } finally {
            term.kill()
          }
          assert.match(
            term.output,
            /^# stty size\r\n43 132\r\n# echo typed\r\ntyped\r\n# exit 4\r\n/,
          )
          assert.match(term.output, /command terminated with exit code 4/)
        })

        test('attach -i to the main process', async () => {
          const t = target()
          const ns = nsName(t, `${scenario}-attach`, version)
          await namespaceWithPods(t.cluster, ns, { main: {} })
          const kubeconfig = await t.kubeconfig(version)
          const r = await kubectl(version, ['-n', ns, 'attach', '-i', 'main'], {
            kubeconfig,
            env: dialect.env,
            stdin: 'echo attached\nexit 0\n',
          })
          assert.equal(r.code, 0, r.stderr)
          assert.match(r.stdout, /attached\n/)
          const requests = kubeletRequestsFor(t.cluster, ns, 'main').filter((q) =>
            q.path.startsWith('/attach/'),
          )
          assert.equal(
            requests[0]?.upgrade?.toLowerCase(),
            kubeletUpgradeFor(t.cluster, 'attach', dialect.upgrade).toLowerCase(),
          )
          assert.deepEqual(
            [...new Set(upgradeVerbsFor(t.cluster, ns, 'main', 'attach'))],
            [dialect.upgrade === 'websocket' ? 'get' : 'create'],
          )
        })
      })
    }

    for (const dialect of portForwardDialects(version)) {
      test(`kubectl ${version}: port-forward over ${dialect.name} carries bytes both ways`, async () => {
        const t = target()
        const ns = nsName(t, `pf-${slug(dialect.name)}`, version)
        await namespaceWithPods(t.cluster, ns, { web: {} })
        const kubeconfig = await t.kubeconfig(version)
        const abort = new AbortController()
        let out = ''
        let ready: (port: number) => void = () => undefined
        const localPort = new Promise<number>((resolve) => (ready = resolve))
        const pf = runBinary(kubectlPath(version), ['-n', ns, 'port-forward', 'pod/web', ':7000'], {
          kubeconfig,
          env: dialect.env,
          signal: abort.signal,
          timeoutMs: 60_000,
          onStdout: (d) => {
            out += d
            const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 7000/.exec(out)
            if (m) ready(Number(m[1]))
          },
        })
        try {
          const port = await Promise.race([
            localPort,
            pf.then((r) => Promise.reject(new Error(`port-forward exited: ${r.stderr}`))),
          ])
          const small = Buffer.from('ping through the tunnel\n')
          assert.deepEqual(await echoThroughPort(port, small), small)
          const big = Buffer.alloc(512 * 1024, 'abcdefghijklmnopqrstuvwxyz')
          assert.ok((await echoThroughPort(port, big)).equals(big))
        } finally {
          abort.abort()
          await pf
        }
        const requests = kubeletRequestsFor(t.cluster, ns, 'web').filter((q) =>
          q.path.startsWith('/portForward/'),
        )
        // every request in this dialect: a fallback to SPDY after a refused WebSocket would pass
        // a check of the first request only
        assert.ok(requests.length > 0)
        const atKubelet = kubeletUpgradeFor(t.cluster, 'portforward', dialect.upgrade)
        for (const q of requests) assert.equal(q.upgrade?.toLowerCase(), atKubelet.toLowerCase())
        assert.deepEqual(
          [...new Set(upgradeVerbsFor(t.cluster, ns, 'web', 'portforward'))],
          [dialect.upgrade === 'websocket' ? 'get' : 'create'],
        )
      })
    }
  }
}
