// What a current cluster (kube-apiserver 1.37) does, through Gatehouse with masking on:
// aggregated discovery (kubectl api-resources the same as direct), SelfSubjectReview (`kubectl
// auth whoami` names the impersonated caller and its provenance), streaming lists (WatchList:
// classified `watch` as the API server does, Secrets masked event by event, the
// `k8s.io/initial-events-end` bookmark passed unchanged), and CBOR (never relayed to a masked
// caller: Gatehouse asks for JSON and masks it).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import {
  adminClient,
  ensureNamespace,
  kubectl,
  readAuditEvents,
  type KubectlVersion,
} from '../../harness/index.ts'
import { CI_REPOSITORY, useGatewayEnv, type GatewayEnv } from './env.ts'
import { policies } from './masking-policies.ts'
import { gatewayTarget } from './target.ts'

const RUN = Math.random().toString(36).slice(2, 7)
const NS = `gw-current-${RUN}`
const PLANTED = `Current-Planted-${RUN}`
const b64 = (s: string): string => Buffer.from(s).toString('base64')
const MASKED = '[MASKED:secret]'

/** CBOR (RFC 8949) of JSON-like values: maps, text strings (all a Secret with stringData needs). */
function cbor(value: unknown): Buffer {
  const head = (major: number, n: number): Buffer =>
    n < 24
      ? Buffer.from([(major << 5) | n])
      : n < 256
        ? Buffer.from([(major << 5) | 24, n])
        : Buffer.from([(major << 5) | 25, n >> 8, n & 255])
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8')
    return Buffer.concat([head(3, bytes.length), bytes])
  }
  const entries = Object.entries(value as Record<string, unknown>)
  return Buffer.concat([
    head(5, entries.length),
    ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)]),
  ])
}
/** The self-described CBOR tag (55799) the API server expects at the start of a CBOR body. */
const CBOR_MAGIC = Buffer.from([0xd9, 0xd9, 0xf7])
const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end'
const WATCH_LIST =
  'watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true'

function assertNoPlanted(bytes: Buffer | string, where: string): void {
  const text = Buffer.isBuffer(bytes) ? bytes.toString('latin1') : bytes
  for (const form of [PLANTED, b64(PLANTED)])
    assert.ok(!text.includes(form), `${form} in clear in ${where}`)
}

interface WatchEvent {
  type: string
  object: {
    kind?: string
    apiVersion?: string
    metadata: { name?: string; resourceVersion?: string; annotations?: Record<string, string> }
    data?: Record<string, string>
  }
}

describe('a current cluster through Gatehouse', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => policies(dir) })
  const target = gatewayTarget(env)
  let agents: { gateway: Agent; direct: Agent } | undefined
  let ciToken = ''

  const secret = (name: string): unknown => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: NS },
    stringData: { password: PLANTED },
  })

  before(async () => {
    const e = env()
    const admin = adminClient(e.cluster)
    await ensureNamespace(admin, NS)
    for (const name of ['a', 'b', 'c'])
      await admin.ensure(`/api/v1/namespaces/${NS}/secrets`, secret(name))
    await admin.close()
    agents = {
      gateway: new Agent({ connect: { ca: readFileSync(e.gatehouse.caFile) }, allowH2: false }),
      direct: new Agent({ connect: { ca: readFileSync(e.cluster.caFile) }, allowH2: false }),
    }
    ciToken = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: CI_REPOSITORY.split('/')[0],
    })
  })
  after(async () => {
    await agents?.gateway.close()
    await agents?.direct.close()
  })

  /** A request through Gatehouse as the CI identity (masked), or straight to the API server as admin. */
  function send(
    e: GatewayEnv,
    via: 'gateway' | 'direct',
    path: string,
    accept: string,
    signal?: AbortSignal,
  ): ReturnType<typeof request> {
    const base = via === 'gateway' ? `${e.gatehouse.url}/clusters/harness` : e.cluster.server
    const token = via === 'gateway' ? ciToken : e.cluster.adminToken
    return request(base + path, {
      dispatcher: agents![via],
      headers: { authorization: `Bearer ${token}`, accept },
      ...(signal ? { signal } : {}),
    })
  }

  async function serverMinor(e: GatewayEnv): Promise<number> {
    const res = await send(e, 'direct', '/version', 'application/json')
    return Number.parseInt(((await res.body.json()) as { minor: string }).minor, 10)
  }

  for (const version of ['1.37', '1.35'] as const satisfies readonly KubectlVersion[]) {
    test(`kubectl ${version}: api-resources and api-versions through Gatehouse are those of the API server`, async () => {
      const e = env()
      const kubeconfig = await target().kubeconfig(version)
      for (const args of [['api-resources'], ['api-resources', '-o', 'wide'], ['api-versions']]) {
        // other test files add resources (CRDs) meanwhile: compare with the server's discovery
        // as it was both before and after the call through Gatehouse
        for (let attempt = 1; ; attempt++) {
          const before = await kubectl(version, args, { kubeconfig: e.cluster.adminKubeconfig })
          const through = await kubectl(version, args, { kubeconfig })
          const after = await kubectl(version, args, { kubeconfig: e.cluster.adminKubeconfig })
          assert.equal(before.code, 0, before.stderr)
          assert.equal(through.code, 0, through.stderr)
          if (before.stdout !== after.stdout && attempt < 5) continue
          assert.equal(through.stdout, after.stdout, `kubectl ${args.join(' ')}`)
          assert.match(through.stdout, /selfsubjectreviews|authentication\.k8s\.io\/v1/)
          break
        }
      }
    })
  }

  test('aggregated discovery (apidiscovery.k8s.io/v2) passes unchanged', async () => {
    const e = env()
    for (const path of ['/api', '/apis']) {
      const [direct, through] = await Promise.all([
        send(e, 'direct', path, `${AGGREGATED},application/json`),
        send(e, 'gateway', path, `${AGGREGATED},application/json`),
      ])
      assert.equal(through.statusCode, 200)
      assert.equal(through.headers['content-type'], direct.headers['content-type'])
      assert.equal(through.headers['content-type'], AGGREGATED)
      const [d, t] = [await direct.body.json(), await through.body.json()]
      assert.equal((t as { kind: string }).kind, 'APIGroupDiscoveryList')
      assert.deepEqual(t, d, path)
    }
  })

  for (const version of ['1.37', '1.35'] as const satisfies readonly KubectlVersion[]) {
    test(`kubectl ${version} auth whoami names the impersonated caller and its provenance`, async () => {
      const e = env()
      const kubeconfig = await target().kubeconfig(version)
      const table = await kubectl(version, ['auth', 'whoami'], { kubeconfig })
      assert.equal(table.code, 0, table.stderr)
      assert.match(table.stdout, new RegExp(`Username\\s+github:${CI_REPOSITORY}`))
      const r = await kubectl(version, ['auth', 'whoami', '-o', 'json'], { kubeconfig })
      assert.equal(r.code, 0, r.stderr)
      const review = JSON.parse(r.stdout) as {
        kind: string
        status: {
          userInfo: { username: string; groups: string[]; extra: Record<string, string[]> }
        }
      }
      assert.equal(review.kind, 'SelfSubjectReview')
      const u = review.status.userInfo
      assert.equal(u.username, `github:${CI_REPOSITORY}`)
      for (const g of [
        'github:octo-org',
        `github-repo:${CI_REPOSITORY}`,
        `github-ref:${CI_REPOSITORY}:refs/heads/main`,
        'system:authenticated',
      ])
        assert.ok(u.groups.includes(g), `${g} in ${JSON.stringify(u.groups)}`)
      assert.deepEqual(u.extra['gatehouse.dev/repository'], [CI_REPOSITORY])
      assert.deepEqual(u.extra['gatehouse.dev/issuer'], [e.issuer.url])
      assert.deepEqual(u.extra['gatehouse.dev/auth-method'], ['oidc'])
      assert.deepEqual(u.extra['gatehouse.dev/ref'], ['refs/heads/main'])
      const [requestId] = u.extra['gatehouse.dev/request-id'] ?? []
      assert.match(requestId ?? '', /^[0-9a-f-]{36}$/)
      // every extra is one Gatehouse sets, none the caller's token could add
      for (const key of Object.keys(u.extra)) assert.match(key, /^gatehouse\.dev\//)
      // the API server saw the review under that request id, from Gatehouse's account
      const event = readAuditEvents(e.cluster.auditLogPath).find((ev) => ev.auditID === requestId)
      assert.equal(event?.objectRef?.resource, 'selfsubjectreviews')
      assert.equal(event?.impersonatedUser?.username, `github:${CI_REPOSITORY}`)
    })
  }

  /** Reads a watch until `until` says stop; returns the events and the raw bytes. */
  async function readWatch(
    res: Awaited<ReturnType<typeof request>>,
    until: (events: WatchEvent[]) => boolean,
    abort: AbortController,
  ): Promise<{ events: WatchEvent[]; raw: Buffer }> {
    const events: WatchEvent[] = []
    const chunks: Buffer[] = []
    let buffered = ''
    const timer = setTimeout(() => abort.abort(), 20_000)
    try {
      for await (const chunk of res.body) {
        chunks.push(chunk as Buffer)
        buffered += (chunk as Buffer).toString('utf8')
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim()
          buffered = buffered.slice(nl + 1)
          if (line) events.push(JSON.parse(line) as WatchEvent)
        }
        if (until(events)) break
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err
    } finally {
      clearTimeout(timer)
      abort.abort()
    }
    return { events, raw: Buffer.concat(chunks) }
  }

  const isEnd = (ev: WatchEvent): boolean =>
    ev.type === 'BOOKMARK' && ev.object.metadata.annotations?.[INITIAL_EVENTS_END] === 'true'

  test('a streaming list (sendInitialEvents) is a watch, masked event by event; its initial-events-end bookmark passes', async () => {
    const e = env()
    const path = `/api/v1/namespaces/${NS}/secrets?${WATCH_LIST}`
    // what the API server sends, straight
    const directAbort = new AbortController()
    const direct = await readWatch(
      await send(e, 'direct', path, 'application/json', directAbort.signal),
      (evs) => evs.some(isEnd),
      directAbort,
    )
    const directEnd = direct.events.find(isEnd)
    assert.ok(
      directEnd,
      `the API server sent no initial-events-end bookmark: ${direct.raw.toString()}`,
    )

    const abort = new AbortController()
    const res = await send(e, 'gateway', path, 'application/json', abort.signal)
    assert.equal(res.statusCode, 200)
    const requestId = String(res.headers['audit-id'])
    let wrote = false
    const through = await readWatch(
      res,
      (evs) => {
        if (!wrote && evs.some(isEnd)) {
          wrote = true
          // an event after the initial ones is masked too
          const admin = adminClient(e.cluster)
          void admin
            .ensure(`/api/v1/namespaces/${NS}/secrets`, secret('after-bookmark'))
            .finally(() => void admin.close())
        }
        return evs.some((ev) => ev.object.metadata.name === 'after-bookmark')
      },
      abort,
    )
    assertNoPlanted(through.raw, 'the streaming list through Gatehouse')
    const endAt = through.events.findIndex(isEnd)
    assert.ok(
      endAt >= 0,
      `no initial-events-end bookmark through Gatehouse: ${through.raw.toString()}`,
    )
    const initial = through.events.slice(0, endAt)
    assert.deepEqual(initial.map((ev) => `${ev.type} ${ev.object.metadata.name}`).sort(), [
      'ADDED a',
      'ADDED b',
      'ADDED c',
    ])
    for (const ev of [...initial, through.events.at(-1)!]) {
      assert.equal(ev.object.kind, 'Secret')
      assert.equal(Buffer.from(ev.object.data!['password']!, 'base64').toString(), MASKED)
    }
    assert.equal(through.events.at(-1)?.type, 'ADDED')
    // the bookmark is the API server's: same shape as straight, nothing added or dropped
    const end = through.events[endAt]!
    const shape = (ev: WatchEvent): unknown => ({
      ...ev,
      object: { ...ev.object, metadata: { ...ev.object.metadata, resourceVersion: 'RV' } },
    })
    assert.deepEqual(shape(end), shape(directEnd))
    assert.deepEqual(end.object.metadata.annotations, { [INITIAL_EVENTS_END]: 'true' })
    const rv = Number(end.object.metadata.resourceVersion)
    for (const ev of initial) assert.ok(Number(ev.object.metadata.resourceVersion) <= rv)
    // classified as the API server does: a watch, in both audit trails
    assert.match(requestId, /^[0-9a-f-]{36}$/)
    let record
    for (let i = 0; i < 50 && !record; i++) {
      // the record is complete when the watch has ended (we went away)
      await e.gatehouse.server.audit.flush()
      record = await e.gatehouse.server.audit.store.get(requestId)
      if (!record) await new Promise((r) => setTimeout(r, 200))
    }
    assert.equal(record?.request?.verb, 'watch')
    assert.equal(record?.request?.resource, 'secrets')
    let event
    for (let i = 0; i < 50 && !event; i++) {
      event = readAuditEvents(e.cluster.auditLogPath).find((ev) => ev.auditID === requestId)
      if (!event) await new Promise((r) => setTimeout(r, 200))
    }
    assert.equal(event?.verb, 'watch')
  })

  test('CBOR is never relayed to a masked caller: Gatehouse asks for JSON and masks it', async (t) => {
    const e = env()
    if ((await serverMinor(e)) < 32) return t.skip('CBOR serving arrived in kube-apiserver 1.32')
    // the API server serves CBOR (the harness turns CBORServingAndStorage on): the control
    const control = await send(
      e,
      'direct',
      `/api/v1/namespaces/${NS}/secrets/a`,
      'application/cbor',
    )
    assert.equal(control.statusCode, 200)
    assert.equal(control.headers['content-type'], 'application/cbor')
    assert.ok((await control.body.arrayBuffer()).byteLength > 0)

    const cases: [string, string, string][] = [
      ['get', `/api/v1/namespaces/${NS}/secrets/a`, 'application/cbor'],
      ['list', `/api/v1/namespaces/${NS}/secrets`, 'application/cbor'],
      [
        'list, CBOR preferred',
        `/api/v1/namespaces/${NS}/secrets`,
        'application/cbor;q=1,application/json;q=0.5',
      ],
      ['list across namespaces', '/api/v1/secrets', 'application/cbor'],
      ['watch', `/api/v1/namespaces/${NS}/secrets?watch=1`, 'application/cbor'],
      ['watch as cbor-seq', `/api/v1/namespaces/${NS}/secrets?watch=1`, 'application/cbor-seq'],
      ['streaming list', `/api/v1/namespaces/${NS}/secrets?${WATCH_LIST}`, 'application/cbor'],
    ]
    for (const [what, path, accept] of cases) {
      const abort = new AbortController()
      const res = await send(e, 'gateway', path, accept, abort.signal)
      const type = String(res.headers['content-type'])
      assert.doesNotMatch(type, /cbor/, `${what}: Gatehouse relayed ${type}`)
      if (path.includes('watch=1')) {
        assert.equal(res.statusCode, 200, what)
        const { events, raw } = await readWatch(
          res,
          (evs) => evs.filter((ev) => ev.type === 'ADDED').length >= 3,
          abort,
        )
        assertNoPlanted(raw, `${what} through Gatehouse`)
        const added = events.filter((ev) => ev.type === 'ADDED')
        assert.ok(added.length >= 3, `${what}: ${raw.toString()}`)
        for (const ev of added)
          assert.equal(Buffer.from(ev.object.data!['password']!, 'base64').toString(), MASKED)
        continue
      }
      const raw = Buffer.from(await res.body.arrayBuffer())
      assertNoPlanted(raw, `${what} through Gatehouse`)
      const body = JSON.parse(raw.toString('utf8')) as {
        kind: string
        data?: Record<string, string>
        items?: { data?: Record<string, string> }[]
      }
      if (res.statusCode !== 200) {
        // refusing is allowed, as a Status
        assert.equal(body.kind, 'Status', `${what}: ${raw.toString()}`)
        continue
      }
      assert.match(type, /^application\/json/, what)
      for (const s of body.items ?? [body])
        if (s.data?.['password'])
          assert.equal(Buffer.from(s.data['password'], 'base64').toString(), MASKED, what)
    }
  })
  test('a Secret written in CBOR: the API server stores it, the caller gets it masked as JSON, Gatehouse records no value', async (t) => {
    const e = env()
    if ((await serverMinor(e)) < 32) return t.skip('CBOR serving arrived in kube-apiserver 1.32')
    const body = Buffer.concat([
      CBOR_MAGIC,
      cbor({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'cbor-written', namespace: NS },
        stringData: { password: PLANTED },
      }),
    ])
    const res = await request(
      `${e.gatehouse.url}/clusters/harness/api/v1/namespaces/${NS}/secrets`,
      {
        method: 'POST',
        dispatcher: agents!.gateway,
        headers: {
          authorization: `Bearer ${ciToken}`,
          'content-type': 'application/cbor',
          accept: 'application/cbor',
        },
        body,
      },
    )
    const raw = Buffer.from(await res.body.arrayBuffer())
    assert.equal(res.statusCode, 201, raw.toString('latin1'))
    assert.match(String(res.headers['content-type']), /^application\/json/)
    assertNoPlanted(raw, 'the create response through Gatehouse')
    const created = JSON.parse(raw.toString('utf8')) as { data: Record<string, string> }
    assert.equal(Buffer.from(created.data['password']!, 'base64').toString(), MASKED)
    // the cluster has the value the caller wrote
    const admin = adminClient(e.cluster)
    const stored = await admin.json<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${NS}/secrets/cbor-written`,
    )
    await admin.close()
    assert.equal(Buffer.from(stored.data['password']!, 'base64').toString(), PLANTED)
    // Gatehouse's record (audit level requestResponse) keeps neither body's value
    const id = String(res.headers['audit-id'])
    await e.gatehouse.server.audit.flush()
    const record = await e.gatehouse.server.audit.store.get(id)
    assert.ok(record, `no record ${id}`)
    assert.deepEqual(Object.keys(record.requestBody ?? {}), ['omitted'])
    assertNoPlanted(JSON.stringify(record), 'its audit record')
  })
})
