// Issue 18 items 1 and 2, through Gatehouse against the real API server: a request with Upgrade
// headers is an upgrade only on exec, attach and port-forward; anywhere else it is refused
// before anything reaches the cluster, so the masked ConfigMap never arrives in clear (a
// WebSocket watch neither). When the API server answers an upgrade with anything but 101,
// Gatehouse relays that answer and closes the connection: the requests a client writes after
// it (in the same write or later) never reach the API server. The in-test checks look for the
// smuggled requests in the API server's audit log; the end-of-run join invariant
// (test/harness/join-invariant.ts) proves that nothing else slipped through either.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminClient, readAuditEvents, waitForAuditEvent } from '../../harness/index.ts'
import { namespaceWithPods } from '../support.ts'
import { CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'
import { rawConnect, requestHead, statusLines } from './raw-http.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const NS = `gw-upg-${RUN}`
const CARD = '4111 1111 1111 1111'

function writePolicy(dir: string): string[] {
  const out = join(dir, 'upgrade-policies')
  mkdirSync(out, { recursive: true })
  writeFileSync(
    join(out, 'policy.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-upgrades
spec:
  subjects:
    - name: 'github:*'
  rules:
    - name: no-secrets
      action: deny
      verbs: ['*']
      apiGroups: ['']
      resources: [secrets]
      message: no Secrets for CI
    - name: everything
      action: allow
      verbs: ['*']
`,
  )
  return [out]
}

const WS = (): Record<string, string> => ({
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
  'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
})
const SPDY = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' }
const H2C = {
  Connection: 'Upgrade, HTTP2-Settings',
  Upgrade: 'h2c',
  'HTTP2-Settings': 'AAMAAABkAAQCAAAAAAIAAAAA',
}
const BOGUS = { Connection: 'Upgrade', Upgrade: 'bogus/1.0' }

/** Requests no client of Gatehouse may get to the API server; each names `marker` in its target. */
function smuggled(marker: string): string {
  return (
    requestHead('GET', `/version?smuggled=${marker}-version`, {}) +
    requestHead('GET', `/api/v1/namespaces/${NS}/secrets/s?smuggled=${marker}-secret`, {
      'Impersonate-User': 'admin',
      'Impersonate-Group': 'system:masters',
    }) +
    requestHead('GET', `/api/v1/namespaces/${NS}/configmaps/cards?smuggled=${marker}-cards`, {})
  )
}

describe('issue 18: upgrades only where Kubernetes has them, nothing smuggled', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => writePolicy(dir) })
  let token: string

  before(async () => {
    const e = env()
    await namespaceWithPods(e.cluster, NS, { box: {} })
    const admin = adminClient(e.cluster)
    try {
      await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'small' },
        data: { hello: 'world' },
      })
      await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cards' },
        data: { payment: `paid with ${CARD}` },
      })
      await admin.ensure(`/api/v1/namespaces/${NS}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's' },
        stringData: { password: 'never-for-ci' },
      })
    } finally {
      await admin.close()
    }
    token = await tokenFor(e)
  })

  const tokenFor = (e: GatewayEnv): Promise<string> =>
    e.issuer.mintGitHubActions({ repository: CI_REPOSITORY, repository_owner: 'octo-org' })

  /** Fails if any request naming `marker` reached the API server (after a request that did). */
  async function assertNeverReached(e: GatewayEnv, marker: string): Promise<void> {
    const sentinel = randomUUID()
    const c = await rawConnect(e.gatehouse)
    c.write(
      requestHead('GET', `/api/v1/namespaces/${NS}/configmaps/small?sentinel=${sentinel}`, {
        Authorization: `Bearer ${token}`,
        Connection: 'close',
      }),
    )
    await c.closed()
    await waitForAuditEvent(e.cluster.auditLogPath, (ev) => ev.requestURI.includes(sentinel))
    await sleep(500)
    const reached = readAuditEvents(e.cluster.auditLogPath).filter((ev) =>
      ev.requestURI.includes(marker),
    )
    assert.deepEqual(
      reached.map((ev) => `${ev.verb} ${ev.requestURI} as ${ev.user?.username}`),
      [],
      'smuggled requests reached the API server',
    )
  }

  const nonUpgradePaths = [
    ['websocket', WS],
    ['SPDY/3.1', () => SPDY],
    ['h2c', () => H2C],
    ['a bogus protocol', () => BOGUS],
  ] as const
  for (const [name, headers] of nonUpgradePaths) {
    for (const timing of ['same write', 'delayed write'] as const) {
      test(`Upgrade: ${name} on a ConfigMap GET is refused; requests after it (${timing}) never reach the API server`, async () => {
        const e = env()
        const marker = randomUUID()
        const c = await rawConnect(e.gatehouse)
        const head = requestHead('GET', `/api/v1/namespaces/${NS}/configmaps/small`, {
          Authorization: `Bearer ${token}`,
          ...headers(),
        })
        c.write(timing === 'same write' ? head + smuggled(marker) : head)
        if (timing === 'delayed write') {
          await c.waitFor('\r\n\r\n')
          await sleep(200)
          c.write(smuggled(marker))
        }
        assert.equal(await c.closed(), true, 'Gatehouse kept the connection open')
        const got = c.received()
        assert.deepEqual(statusLines(got), [400], got.toString('latin1'))
        const body = JSON.parse(got.toString('utf8').split('\r\n\r\n')[1]!) as {
          kind: string
          code: number
          message: string
        }
        assert.equal(body.kind, 'Status')
        assert.equal(body.code, 400)
        assert.match(body.message, /only for pods\/exec, pods\/attach and pods\/portforward/)
        await assertNeverReached(e, marker)
      })
    }
  }

  const refusedUpgrades = [
    [
      'a WebSocket exec of a pod that does not exist (404)',
      'GET',
      `/api/v1/namespaces/${NS}/pods/nobody/exec?command=cat&stdin=true&stdout=true`,
      WS,
      404,
    ],
    [
      'a SPDY exec offering no stream protocol the kubelet speaks (403)',
      'POST',
      `/api/v1/namespaces/${NS}/pods/box/exec?command=cat&stdin=true&stdout=true`,
      () => ({ ...SPDY, 'X-Stream-Protocol-Version': 'v99.channel.k8s.io' }),
      403,
    ],
    [
      'a WebSocket exec without a key (400)',
      'GET',
      `/api/v1/namespaces/${NS}/pods/box/exec?command=cat&stdin=true&stdout=true`,
      () => {
        const h = WS()
        delete h['Sec-WebSocket-Key']
        return h
      },
      400,
    ],
  ] as const
  for (const [name, method, path, headers, code] of refusedUpgrades) {
    for (const timing of ['same write', 'delayed write'] as const) {
      test(`${name}: the answer is relayed, the connection closed, nothing after it (${timing}) reaches the API server`, async () => {
        const e = env()
        const marker = randomUUID()
        const c = await rawConnect(e.gatehouse)
        const head = requestHead(method, path, { Authorization: `Bearer ${token}`, ...headers() })
        c.write(timing === 'same write' ? head + smuggled(marker) : head)
        if (timing === 'delayed write') {
          await c.waitFor('\r\n\r\n')
          await sleep(200)
          c.write(smuggled(marker))
        }
        assert.equal(await c.closed(), true, 'Gatehouse kept the connection open')
        const got = c.received()
        assert.deepEqual(statusLines(got), [code], got.toString('latin1'))
        assert.match(got.toString('latin1'), /\r\nconnection: close\r\n/i)
        await assertNeverReached(e, marker)
      })
    }
  }

  describe('masking cannot be skipped with Upgrade headers', () => {
    const reads = [
      ['a GET', `/api/v1/namespaces/${NS}/configmaps/cards`],
      ['a list', `/api/v1/namespaces/${NS}/configmaps`],
      ['a WebSocket watch', `/api/v1/namespaces/${NS}/configmaps?watch=true`],
      ['a /watch/ path', `/api/v1/watch/namespaces/${NS}/configmaps`],
    ] as const
    for (const [what, target] of reads) {
      test(`${what} of the masked ConfigMap with Upgrade: websocket is refused, its value never sent`, async () => {
        const e = env()
        const c = await rawConnect(e.gatehouse)
        c.write(requestHead('GET', target, { Authorization: `Bearer ${token}`, ...WS() }))
        assert.equal(await c.closed(), true)
        const got = c.received().toString('utf8')
        assert.ok(!got.includes(CARD), `the card number in clear:\n${got}`)
        assert.deepEqual(statusLines(c.received()), [400], got)
      })
    }

    test('the same GET without Upgrade headers is served, masked', async () => {
      const e = env()
      const c = await rawConnect(e.gatehouse)
      c.write(
        requestHead('GET', `/api/v1/namespaces/${NS}/configmaps/cards`, {
          Authorization: `Bearer ${token}`,
          Connection: 'close',
        }),
      )
      assert.equal(await c.closed(), true)
      const got = c.received().toString('utf8')
      assert.deepEqual(statusLines(c.received()), [200], got)
      assert.ok(!got.includes(CARD), got)
      assert.match(got, /paid with/)
    })
  })

  test('a refused upgrade has its audit record with the refusal', async () => {
    const e = env()
    const c = await rawConnect(e.gatehouse)
    c.write(
      requestHead('GET', `/api/v1/namespaces/${NS}/configmaps/small?audited=${RUN}`, {
        Authorization: `Bearer ${token}`,
        ...BOGUS,
      }),
    )
    await c.closed()
    const auditId = /audit-id: ([0-9a-f-]+)/i.exec(c.received().toString('latin1'))?.[1]
    assert.ok(auditId, c.received().toString('latin1'))
    let record
    for (let i = 0; i < 50 && !record; i++) {
      record = await e.gatehouse.server.audit.store.get(auditId)
      if (!record) await sleep(100)
    }
    assert.equal(record?.response.code, 400)
    assert.equal(record?.error?.code, 'GW_UPGRADE_UNSUPPORTED')
    assert.equal(record?.identity?.name.startsWith('github:'), true)
  })
})
