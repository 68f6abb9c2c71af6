// Exec and attach output masked on its way to the client, with real kubectl (1.35 and 1.32 over
// WebSocket, 1.35 forced onto SPDY, 1.20 over SPDY) through Gatehouse to the real API server and
// the fake kubelet: a card number, an SSN, an AWS access key and a PEM private key printed on
// stdout and stderr reach the client as placeholders, exit codes unchanged, also with a TTY; an
// identity whose policy says `mask: {enabled: false}` sees them as printed.
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { kubectl } from '../../harness/index.ts'
import { KUBECTL_VERSIONS, kubectlPath } from '../../harness/binaries.ts'
import type { SessionRecord } from '../../../src/sessions/record.ts'
import { namespaceWithPods, Terminal, execDialects, withoutClientGoNoise } from '../support.ts'
import { SA_NAMESPACE, useGatewayEnv, type GatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const READER = 'mask-reader'

const CARD = '4111 1111 1111 1111'
const SSN = '123-45-6789'
const AWS = 'AKIAIOSFODNN7EXAMPLE'
const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEA7bq8Hm2sQvPpL0',
  'AoGBAKq1nO3eY6wzTt',
  '-----END RSA PRIVATE KEY-----',
].join('\n')
/** What must never reach a masked client: the values, and the key's body. */
const PLANTED = [CARD, SSN, AWS, 'MIIEowIBAAKCAQEA7bq8Hm2sQvPpL0', 'AoGBAKq1nO3eY6wzTt']

/** The fake container's script: every value on stdout, and again on stderr, then exit 3. */
const SCRIPT = [
  `echo card ${CARD}`,
  `echo ssn ${SSN}`,
  `echo key ${AWS}`,
  `echo '${PEM}'`,
  `echo -n 'no newline ${SSN}'`,
  `echo err card ${CARD} >&2`,
  `echo err key ${AWS} >&2`,
  `echo '${PEM}' >&2`,
  'exit 3',
].join('; ')
const STDOUT = `card ${CARD}\nssn ${SSN}\nkey ${AWS}\n${PEM}\nno newline ${SSN}`
const STDERR = `err card ${CARD}\nerr key ${AWS}\n${PEM}\n`
const MASKED_STDOUT =
  'card [MASKED:card]\nssn [MASKED:ssn]\nkey [MASKED:aws-access-key]\n[MASKED:private-key]\nno newline [MASKED:ssn]'
const MASKED_STDERR =
  'err card [MASKED:card]\nerr key [MASKED:aws-access-key]\n[MASKED:private-key]\n'

function policies(dir: string): string[] {
  const out = join(dir, 'session-masking-policies')
  mkdirSync(out, { recursive: true })
  writeFileSync(
    join(out, 'policies.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-session-masking-ci
spec:
  subjects:
    - name: 'github:*'
  rules:
    - name: correlatable
      action: allow
      verbs: ['*']
      namespaces: ['gw-smask-hmac-*']
      mask: { replacement: hmac }
    - name: everything
      action: allow
      verbs: ['*']
---
apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-session-masking-reader
spec:
  subjects:
    - name: 'k8s:serviceaccount:${SA_NAMESPACE}:${READER}'
  mask: { enabled: false }
  rules:
    - name: sees-everything
      action: allow
      verbs: ['*']
`,
  )
  return [out]
}

function assertNothingPlanted(text: string, what: string): void {
  for (const p of PLANTED) assert.ok(!text.includes(p), `${what} holds ${p}:\n${text}`)
}

async function sessionIn(env: GatewayEnv, namespace: string): Promise<SessionRecord> {
  const store = env.gatehouse.server.stores.sessions
  const deadline = Date.now() + 10_000
  for (;;) {
    const ended = (await store.querySessions({ namespace })).filter((s) => s.state !== 'live')
    if (ended[0]) return ended[0]
    if (Date.now() > deadline) throw new Error(`no ended session in ${namespace}`)
    await sleep(50)
  }
}

describe('exec and attach output masked for the client', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => policies(dir) })
  const target = gatewayTarget(env)

  for (const version of [...KUBECTL_VERSIONS].reverse()) {
    for (const dialect of execDialects(version)) {
      const tag = `${version.replace('.', '')}-${dialect.name}-${RUN}`

      test(`kubectl ${version} (${dialect.name}): exec stdout and stderr masked, exit code kept`, async () => {
        const e = env()
        const ns = `gw-smask-exec-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = await target().kubeconfig(version)
        const r = await kubectl(version, ['-n', ns, 'exec', 'box', '--', 'sh', '-c', SCRIPT], {
          kubeconfig,
          env: dialect.env,
        })
        assert.equal(r.code, 3, r.stderr)
        assertNothingPlanted(r.stdout + r.stderr, 'kubectl output')
        assert.equal(r.stdout, MASKED_STDOUT)
        assert.equal(
          withoutClientGoNoise(r.stderr),
          `${MASKED_STDERR}command terminated with exit code 3\n`,
        )
        const s = await sessionIn(e, ns)
        assert.equal(s.exitCode, 3)
        assert.equal(s.maskedForClient, 8)
      })

      test(`kubectl ${version} (${dialect.name}): an identity allowed to see them sees them unchanged`, async () => {
        const e = env()
        const ns = `gw-smask-open-${tag}`
        await namespaceWithPods(e.cluster, ns, { box: {} })
        const kubeconfig = e.gatehouse.kubeconfig({
          token: await e.serviceAccountToken(READER),
          name: `reader-${tag}`,
        })
        const r = await kubectl(version, ['-n', ns, 'exec', 'box', '--', 'sh', '-c', SCRIPT], {
          kubeconfig,
          env: dialect.env,
        })
        assert.equal(r.code, 3, r.stderr)
        assert.equal(r.stdout, STDOUT)
        assert.equal(
          withoutClientGoNoise(r.stderr),
          `${STDERR}command terminated with exit code 3\n`,
        )
        const s = await sessionIn(e, ns)
        assert.equal(s.maskedForClient, undefined)
      })
    }
  }

  test("kubectl 1.35: the replacement is the policy decision's (keyed hash: equal values match)", async () => {
    const e = env()
    const ns = `gw-smask-hmac-${RUN}`
    await namespaceWithPods(e.cluster, ns, { box: {} })
    const kubeconfig = await target().kubeconfig('1.35')
    const r = await kubectl(
      '1.35',
      ['-n', ns, 'exec', 'box', '--', 'sh', '-c', `echo ${CARD}; echo ${CARD} >&2`],
      { kubeconfig },
    )
    assert.equal(r.code, 0, r.stderr)
    const out = /^\[MASKED:card:hmac=([0-9a-f]{16})\]\n$/.exec(r.stdout)
    assert.ok(out, r.stdout)
    assert.equal(withoutClientGoNoise(r.stderr), `[MASKED:card:hmac=${out[1]}]\n`)
  })

  for (const [version, dialect] of (['1.37', '1.35'] as const).flatMap((v) =>
    execDialects(v).map((d) => [v, d] as const),
  )) {
    const tag = `${version.replace('.', '')}-${dialect.name}-${RUN}`

    test(`kubectl ${version} (${dialect.name}): attach output masked`, async () => {
      const e = env()
      const ns = `gw-smask-attach-${tag}`
      await namespaceWithPods(e.cluster, ns, { main: {} })
      const kubeconfig = await target().kubeconfig(version)
      const r = await kubectl(version, ['-n', ns, 'attach', '-i', 'main'], {
        kubeconfig,
        env: dialect.env,
        stdin: `echo card ${CARD}\necho key ${AWS}\nexit 0\n`,
      })
      assert.equal(r.code, 0, r.stderr)
      assertNothingPlanted(r.stdout, 'attach output')
      assert.match(r.stdout, /card \[MASKED:card\]\nkey \[MASKED:aws-access-key\]\n/)
    })

    test(`kubectl ${version} (${dialect.name}): TTY exec masked; a prompt without a newline still shows`, async () => {
      const e = env()
      const ns = `gw-smask-tty-${tag}`
      await namespaceWithPods(e.cluster, ns, { shell: {} })
      const kubeconfig = await target().kubeconfig(version)
      const printed = new Terminal(
        [kubectlPath(version), '-n', ns, 'exec', '-it', 'shell', '--', 'sh', '-c', SCRIPT],
        { env: { KUBECONFIG: kubeconfig, ...dialect.env } },
      )
      try {
        assert.equal(await printed.exited, 3)
      } finally {
        printed.kill()
      }
      assertNothingPlanted(printed.output, 'the terminal')
      // with a TTY, stderr is part of the terminal's output and lines end in CR LF
      assert.ok(
        printed.output.includes(`${MASKED_STDOUT}${MASKED_STDERR}`.replace(/\n/g, '\r\n')),
        JSON.stringify(printed.output),
      )
      // the shell's prompt has no newline: it reaches the terminal when the stream goes quiet
      const term = new Terminal(
        [kubectlPath(version), '-n', ns, 'exec', '-it', 'shell', '--', 'sh'],
        {
          env: { KUBECONFIG: kubeconfig, ...dialect.env },
        },
      )
      try {
        await term.waitFor('# ')
        term.type('echo typed\r')
        await term.waitFor('typed\r\n# ')
        term.type('exit 4\r')
        assert.equal(await term.exited, 4)
      } finally {
        term.kill()
      }
    })
  }
})
