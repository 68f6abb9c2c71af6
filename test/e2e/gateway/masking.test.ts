// Masking through Gatehouse with real clients (kubectl 1.20, 1.32, 1.35 and client-node) against
// the real API server: a Secret, secret-looking env values, a ConfigMap holding card numbers, an
// applied Secret's last-applied annotation, pod logs and a custom resource's configured fields
// never reach a masked caller in clear, in any shape (objects, lists, Tables, watches, raw
// paths, protobuf asked for); kubectl prints Gatehouse's Warning; an identity whose policy turns
// masking off sees everything unchanged; nothing Gatehouse records (its data directory and its
// PostgreSQL store) holds a planted value. (masking-clients.test.ts: the client scenarios with
// masking on.)
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import pg from 'pg'
import { Agent, request } from 'undici'
import { adminClient, kubectl, KUBECTL_VERSIONS } from '../../harness/index.ts'
import { filesWritten, namespaceWithPods } from '../support.ts'
import { useGatewayEnv } from './env.ts'
import { BACKUP, policies } from './masking-policies.ts'
import { gatewayTarget } from './target.ts'

const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `gh_e2e_masking_${process.pid}`
const RUN = Math.random().toString(36).slice(2, 6)
const NS = `gw-mask-${RUN}`
const GROUP = 'e2e.gatehouse.dev'

/** Values planted in the cluster; none may reach a masked caller or any Gatehouse record. */
const PLANTED = {
  secretPassword: `Secret-Planted-Pa55word-${RUN}`,
  envPassword: `Env-Planted-Value-${RUN}`,
  card: '4111 1111 1111 1111',
  card2: '5500 0000 0000 0004',
  ssn: '078-05-1120',
  aws: 'AKIAIOSFODNN7EXAMPLE',
  pemBody: `MHcCAQEEIBkg4LVWM9nuwNSk3yBzMaskPlanted${RUN}`,
  crdPassword: `Crd-Planted-${RUN}`,
  appliedToken: `Applied-Planted-Token-${RUN}`,
  watchedValue: `Watched-Planted-${RUN}`,
}
const b64 = (s: string): string => Buffer.from(s).toString('base64')
const PEM = `-----BEGIN EC PRIVATE KEY-----\n${PLANTED.pemBody}\n-----END EC PRIVATE KEY-----`
/** Every form a planted value could take in a client's output. */
const FORMS = Object.entries(PLANTED).flatMap(([k, v]) => [
  [k, v],
  [`${k} (base64)`, b64(v)],
])

function assertNoPlanted(text: string, where: string): void {
  for (const [what, value] of FORMS)
    assert.ok(!text.includes(value!), `${what} (${value}) in clear in ${where}:\n${text}`)
}

describe('masking', () => {
  const env = useGatewayEnv({
    policies: (_issuer, dir) => policies(dir),
    overrides: {
      audit: { store: { postgres: { url: PG_URL, schema: SCHEMA } }, maxBodyBytes: 1024 * 1024 },
      masking: {
        fields: [
          { apiGroup: GROUP, kind: 'Database', paths: ['spec.password', 'spec.users[*].token'] },
        ],
      },
    },
  })
  const target = gatewayTarget(env)

  before(async () => {
    const e = env()
    await namespaceWithPods(e.cluster, NS, {
      app: {
        containers: [{ name: 'main', env: [{ name: 'DB_PASSWORD', value: PLANTED.envPassword }] }],
        annotations: {
          'gatehouse.test/log': `paid with ${PLANTED.card}\nssn ${PLANTED.ssn}\naws ${PLANTED.aws}\n${PEM}\nall good\n`,
          'gatehouse.test/follow': '2,50',
        },
      },
    })
    const admin = adminClient(e.cluster)
    try {
      await admin.ensure(`/api/v1/namespaces/${NS}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db', labels: { app: 'db' } },
        type: 'Opaque',
        data: { password: b64(PLANTED.secretPassword), user: b64('admin') },
      })
      await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'billing' },
        data: { cards: `primary ${PLANTED.card}\nbackup ${PLANTED.card2}\n`, region: 'eu-west-1' },
      })
      await admin.ensure(`/apis/apps/v1/namespaces/${NS}/deployments`, {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              containers: [
                {
                  name: 'web',
                  image: 'example.invalid/web:1',
                  env: [
                    { name: 'DB_PASSWORD', value: PLANTED.envPassword },
                    { name: 'LOG_LEVEL', value: 'debug' },
                  ],
                },
              ],
            },
          },
        },
      })
      await admin.ensure('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `databases.${GROUP}` },
        spec: {
          group: GROUP,
          scope: 'Namespaced',
          names: { plural: 'databases', singular: 'database', kind: 'Database' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          ],
        },
      })
      for (let i = 0; ; i++) {
        try {
          await admin.ensure(`/apis/${GROUP}/v1/namespaces/${NS}/databases`, {
            apiVersion: `${GROUP}/v1`,
            kind: 'Database',
            metadata: { name: 'orders' },
            spec: {
              engine: 'postgres',
              password: PLANTED.crdPassword,
              users: [{ name: 'app', token: PLANTED.crdPassword }],
            },
          })
          break
        } catch (err) {
          if (i > 50) throw err
          await sleep(200) // the CRD is being established
        }
      }
    } finally {
      await admin.close()
    }
  })

  after(async () => {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await client.end()
  })

  async function raw(
    path: string,
    headers: Record<string, string> = {},
    token?: string,
    method: 'GET' | 'HEAD' = 'GET',
  ): Promise<{ code: number; headers: Record<string, unknown>; body: string }> {
    const e = env()
    const agent = new Agent({ connect: { ca: readFileSync(e.gatehouse.caFile) } })
    try {
      const res = await request(`${e.gatehouse.url}${path}`, {
        method,
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${token ?? (await e.issuer.mintGitHubActions({ repository: 'octo-org/app', repository_owner: 'octo-org' }))}`,
          ...headers,
        },
      })
      return { code: res.statusCode, headers: res.headers, body: await res.body.text() }
    } finally {
      await agent.close()
    }
  }

  for (const version of KUBECTL_VERSIONS) {
    test(`kubectl ${version}: a Secret in every shape is masked and kubectl prints the Warning`, async () => {
      const kubeconfig = await target().kubeconfig(version)
      const run = async (...args: string[]) => {
        const r = await kubectl(version, ['-n', NS, ...args], { kubeconfig })
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
        assertNoPlanted(r.stdout + r.stderr, `kubectl ${version} ${args.join(' ')}`)
        return r
      }
      const yaml = await run('get', 'secret', 'db', '-o', 'yaml')
      assert.match(
        yaml.stdout,
        new RegExp(`password: ${b64('[MASKED:secret]').replace(/[+/=]/g, '\\$&')}`),
      )
      assert.match(
        yaml.stderr,
        /Warning: Gatehouse masked 2 values \(policy 'e2e-masked', rule 'everything'\)/,
      )
      const json = await run('get', 'secret/db', '-o', 'json')
      const secret = JSON.parse(json.stdout) as {
        data: Record<string, string>
        metadata: { labels: object }
      }
      assert.equal(Buffer.from(secret.data['password']!, 'base64').toString(), '[MASKED:secret]')
      assert.deepEqual(secret.metadata.labels, { app: 'db' })
      const table = await run('get', 'secrets')
      assert.match(table.stdout, /^db\s+Opaque\s+2\s/m)
      const all = await run('get', 'secrets', '-A', '-o', 'json')
      assert.ok((JSON.parse(all.stdout) as { items: unknown[] }).items.length >= 1)
      const described = await run('describe', 'secret', 'db')
      assert.match(described.stdout, /password:\s+\d+ bytes/)
      await run('get', 'secrets', '-o', 'yaml', '--chunk-size=1')
      for (const path of [
        `/api/v1/namespaces/${NS}/secrets/db`,
        `/api/v1/namespaces/${NS}/secrets?limit=1`,
        `/api/v1/namespaces/${NS}/secret%73/db`,
      ]) {
        const r = await kubectl(version, ['get', '--raw', path], { kubeconfig })
        assertNoPlanted(r.stdout + r.stderr, `kubectl ${version} get --raw ${path}`)
        if (r.code === 0) assert.match(r.stdout, /W01BU0tFRDpzZWNyZXRd/)
        else assert.match(r.stderr, /Error from server \(BadRequest\)/)
      }
    })

    test(`kubectl ${version}: env values, a ConfigMap's cards, pod logs and logs -f are masked`, async () => {
      const kubeconfig = await target().kubeconfig(version)
      const run = async (...args: string[]) => {
        const r = await kubectl(version, ['-n', NS, ...args], { kubeconfig })
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
        assertNoPlanted(r.stdout + r.stderr, `kubectl ${version} ${args.join(' ')}`)
        return r
      }
      const dep = await run('get', 'deployment', 'web', '-o', 'yaml')
      assert.match(dep.stdout, /value: '?\[MASKED:env\]'?/)
      assert.match(dep.stdout, /value: debug/)
      const pod = await run('get', 'pod', 'app', '-o', 'json')
      assert.match(pod.stdout, /\[MASKED:env\]/)
      const cm = await run('get', 'configmap', 'billing', '-o', 'yaml')
      assert.match(cm.stdout, /primary \[MASKED:card\]/)
      assert.match(cm.stdout, /region: eu-west-1/)
      const logs = await run('logs', 'app')
      assert.match(
        logs.stdout,
        /paid with \[MASKED:card\]\nssn \[MASKED:ssn\]\naws \[MASKED:aws-access-key\]\n\[MASKED:private-key\]\nall good\n/,
      )
      assert.match(logs.stderr, /Warning: Gatehouse masked 4 values/)
      const followed = await run('logs', '-f', 'app')
      assert.match(followed.stdout, /paid with \[MASKED:card\][\s\S]*follow line 2 of/)
    })

    test(`kubectl ${version}: get -w shows masked events as they happen`, async () => {
      const kubeconfig = await target().kubeconfig(version)
      const name = `watched-${version.replace('.', '')}`
      const admin = adminClient(env().cluster)
      let out = ''
      let requestLog = ''
      const abort = new AbortController()
      try {
        await admin.ensure(`/api/v1/namespaces/${NS}/secrets`, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name },
          data: { v: b64('first') },
        })
        const watching = kubectl(
          version,
          ['-n', NS, 'get', 'secret', name, '-w', '-o', 'json', '-v=6'],
          {
            kubeconfig,
            signal: abort.signal,
            onStdout: (c) => (out += c),
            onStderr: (c) => (requestLog += c),
            timeoutMs: 90_000,
          },
        )
        // two deadlines: a cold kubectl's discovery alone took most of one shared 15 s budget
        // under CI load, leaving the event no time to arrive
        const printed = Date.now() + 45_000
        while (!out.includes(name) && Date.now() < printed) await sleep(50)
        assert.ok(out.includes(name), `kubectl ${version} get -w printed nothing in 45 s`)
        // kubectl prints the object, then watches it from resourceVersion 0 and drops the
        // watch's first event (the object as it is then): a change made before its watch is
        // running is that dropped event. Nothing outside tells when the watch runs (the API
        // server's audit event for it is written with its first byte), so the Secret changes
        // until an event shows, each time to another value that holds the planted one.
        const deadline = Date.now() + 30_000
        for (let i = 0; (out.match(/"resourceVersion"/g) ?? []).length < 2; i++) {
          assert.ok(
            Date.now() < deadline,
            `no MODIFIED event seen after ${i} changes:\n${out}\nkubectl -v=6:\n${requestLog.slice(-3000)}`,
          )
          await admin.json(
            'PATCH',
            `/api/v1/namespaces/${NS}/secrets/${name}`,
            { data: { v: b64(i % 2 ? `${PLANTED.watchedValue} ${i}` : PLANTED.watchedValue) } },
            'application/merge-patch+json',
          )
          const next = Date.now() + 2_000
          while ((out.match(/"resourceVersion"/g) ?? []).length < 2 && Date.now() < next)
            await sleep(50)
        }
        abort.abort()
        await watching
      } finally {
        abort.abort()
        await admin.close()
      }
      assert.ok(
        (out.match(/"resourceVersion"/g) ?? []).length >= 2,
        `no MODIFIED event seen:\n${out}`,
      )
      assertNoPlanted(out, `kubectl ${version} get -w`)
      assert.ok(!out.includes(b64('first')), out)
      assert.match(out, new RegExp(b64('[MASKED:secret]').replace(/[+/=]/g, '\\$&')))
      // every value kubectl printed, whichever change it shows
      const values = [...out.matchAll(/"v": "([^"]*)"/g)].map((m) => m[1])
      assert.ok(values.length >= 2, out)
      for (const v of values) assert.equal(v, b64('[MASKED:secret]'), out)
    })
  }

  test('kubectl apply of a Secret, then get -o yaml: the last-applied annotation is masked, the cluster has the real value', async () => {
    const kubeconfig = await target().kubeconfig('1.35')
    const manifest = join(env().dir, 'applied-secret.yaml')
    writeFileSync(
      manifest,
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  namespace: ${NS}\nstringData:\n  token: ${PLANTED.appliedToken}\n`,
    )
    const applied = await kubectl('1.35', ['apply', '-f', manifest], { kubeconfig })
    assert.equal(applied.code, 0, applied.stderr)
    assertNoPlanted(applied.stdout + applied.stderr, 'kubectl apply')
    const got = await kubectl('1.35', ['-n', NS, 'get', 'secret', 'applied', '-o', 'yaml'], {
      kubeconfig,
    })
    assert.equal(got.code, 0, got.stderr)
    assertNoPlanted(got.stdout, 'get -o yaml after apply')
    assert.match(got.stdout, /last-applied-configuration: \|[\s\S]*\[MASKED:secret\]/)
    // applying again with a change works from the masked view (3-way merge) and writes the real value
    writeFileSync(
      manifest,
      readFileSync(manifest, 'utf8').replace(PLANTED.appliedToken, `${PLANTED.appliedToken}-2`),
    )
    const again = await kubectl('1.35', ['apply', '-f', manifest], { kubeconfig })
    assert.equal(again.code, 0, again.stderr)
    const admin = adminClient(env().cluster)
    try {
      const stored = await admin.json<{ data: { token: string } }>(
        'GET',
        `/api/v1/namespaces/${NS}/secrets/applied`,
      )
      assert.equal(Buffer.from(stored.data.token, 'base64').toString(), `${PLANTED.appliedToken}-2`)
    } finally {
      await admin.close()
    }
  })

  test('raw paths and odd encodings, protobuf and Table Accept, watches, pages: masked or refused, never in clear', async () => {
    const secret = `/api/v1/namespaces/${NS}/secrets/db`
    const cases: { path: string; headers?: Record<string, string> }[] = [
      { path: secret },
      { path: `/api/v1/namespaces/${NS}/secrets` },
      { path: `/api/v1/namespaces/${NS}/secrets?fieldSelector=metadata.name%3Ddb` },
      { path: `/api/v1/namespaces/${NS}/secrets?limit=1` },
      { path: `/api/v1/secrets?labelSelector=app%3Ddb` },
      { path: `${secret}?pretty=true` },
      { path: `/api/v1/namespaces/${NS}/secre%74s/db` },
      { path: `/api/v1/namespaces/${NS}//secrets/db` },
      { path: `/api/v1/namespaces/${NS}/secrets/./db` },
      { path: `/api/v1/namespaces/${NS}/secrets/%64b` },
      { path: `/api//v1/namespaces/${NS}/secrets/db` },
      { path: secret, headers: { accept: 'application/vnd.kubernetes.protobuf' } },
      {
        path: secret,
        headers: { accept: 'application/vnd.kubernetes.protobuf, application/json' },
      },
      { path: secret, headers: { accept: 'application/yaml' } },
      { path: secret, headers: { 'accept-encoding': 'gzip' } },
      {
        path: `/api/v1/namespaces/${NS}/secrets?includeObject=Object`,
        headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
      },
      {
        path: `/api/v1/namespaces/${NS}/secrets?includeObject=Object`,
        headers: { accept: 'application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io' },
      },
      { path: `/api/v1/namespaces/${NS}/configmaps/billing` },
      { path: `/api/v1/namespaces/${NS}/pods/app/log` },
      { path: `/apis/apps/v1/namespaces/${NS}/deployments` },
      { path: `/apis/${GROUP}/v1/namespaces/${NS}/databases/orders` },
      { path: `/apis/${GROUP}/v1/databases` },
    ]
    let masked = 0
    for (const c of cases) {
      const r = await raw(c.path, c.headers)
      assertNoPlanted(r.body, `${c.path} ${JSON.stringify(c.headers ?? {})}`)
      if (r.code === 200) {
        masked++
        assert.ok(
          /MASKED|W01BU0tFRD/.test(r.body),
          `${c.path}: 200 without a masked value: ${r.body.slice(0, 400)}`,
        )
      } else {
        // refused: a Kubernetes Status a person can act on
        assert.ok([400, 404].includes(r.code), `${c.path}: ${r.code} ${r.body}`)
        assert.equal((JSON.parse(r.body) as { kind: string }).kind, 'Status')
      }
    }
    assert.ok(masked >= 16, `only ${masked} of ${cases.length} answered`)
    // a response without a body (HEAD: the API server answers 405) is relayed, not refused
    const head = await raw(secret, {}, undefined, 'HEAD')
    assert.equal(head.code, 405)
    assert.equal(head.body, '')
    // a page with a continue token: the next page is masked too
    const first = JSON.parse((await raw(`/api/v1/namespaces/${NS}/secrets?limit=1`)).body) as {
      metadata: { continue?: string }
    }
    assert.ok(first.metadata.continue, 'expected more than one Secret page')
    const next = await raw(
      `/api/v1/namespaces/${NS}/secrets?limit=1&continue=${encodeURIComponent(first.metadata.continue)}`,
    )
    assert.equal(next.code, 200)
    assertNoPlanted(next.body, 'second page')
    // watches: ?watch=1 and the legacy /watch/ path, with initial events (resourceVersion=0)
    for (const [path, accept] of [
      [`/api/v1/namespaces/${NS}/secrets?watch=1&resourceVersion=0&timeoutSeconds=1`, undefined],
      [`/api/v1/watch/namespaces/${NS}/secrets?resourceVersion=0&timeoutSeconds=1`, undefined],
      // kubectl get -w asks for a Table watch; with includeObject=Object every row holds a Secret
      [
        `/api/v1/namespaces/${NS}/secrets?watch=1&resourceVersion=0&timeoutSeconds=1&includeObject=Object`,
        'application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io',
      ],
    ] as const) {
      const r = await raw(path, accept ? { accept } : {})
      assert.equal(r.code, 200, r.body)
      const events = r.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; object: { kind: string } })
      assert.ok(
        events.some((ev) => ev.type === 'ADDED'),
        r.body,
      )
      if (accept)
        assert.ok(
          events.every((ev) => ev.object.kind === 'Table'),
          r.body,
        )
      assert.match(r.body, /W01BU0tFRDpzZWNyZXRd/)
      assertNoPlanted(r.body, path)
    }
  })

  test('a custom resource: the configured field paths are masked, other fields kept', async () => {
    const kubeconfig = await target().kubeconfig('1.35')
    const r = await kubectl(
      '1.35',
      ['-n', NS, 'get', `databases.${GROUP}`, 'orders', '-o', 'json'],
      { kubeconfig },
    )
    assert.equal(r.code, 0, r.stderr)
    assertNoPlanted(r.stdout, 'kubectl get database')
    const db = JSON.parse(r.stdout) as {
      spec: { engine: string; password: string; users: { name: string; token: string }[] }
    }
    assert.equal(db.spec.password, '[MASKED:field]')
    assert.deepEqual(db.spec.users, [{ name: 'app', token: '[MASKED:field]' }])
    assert.equal(db.spec.engine, 'postgres')
  })

  test('client-node: read a Secret and list Secrets across namespaces: masked', async () => {
    const kc = new KubeConfig()
    kc.loadFromFile(await target().kubeconfig('client-node'))
    const core = kc.makeApiClient(CoreV1Api)
    const one = await core.readNamespacedSecret({ namespace: NS, name: 'db' })
    assert.equal(Buffer.from(one.data!['password']!, 'base64').toString(), '[MASKED:secret]')
    const all = await core.listSecretForAllNamespaces()
    assertNoPlanted(JSON.stringify(all), 'client-node list')
    assert.ok(all.items.some((s) => s.metadata?.name === 'db'))
  })

  test('replacements chosen by policy: partial keeps the last four digits, hmac keeps equal values equal', async () => {
    const kubeconfig = await target().kubeconfig('1.35')
    for (const [ns, expect] of [
      [
        `gw-mask-partial-${RUN}`,
        /primary \[MASKED:card:last4=1111\]\nbackup \[MASKED:card:last4=0004\]/,
      ],
      [
        `gw-mask-hmac-${RUN}`,
        /primary \[MASKED:card:hmac=([0-9a-f]{16})\]\nbackup \[MASKED:card:hmac=(?!\1)[0-9a-f]{16}\]\nagain \[MASKED:card:hmac=\1\]/,
      ],
    ] as const) {
      await namespaceWithPods(env().cluster, ns)
      const admin = adminClient(env().cluster)
      try {
        await admin.ensure(`/api/v1/namespaces/${ns}/configmaps`, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'billing' },
          data: {
            cards: `primary ${PLANTED.card}\nbackup ${PLANTED.card2}\nagain ${PLANTED.card}\n`,
          },
        })
      } finally {
        await admin.close()
      }
      const r = await kubectl(
        '1.35',
        ['-n', ns, 'get', 'configmap', 'billing', '-o', 'jsonpath={.data.cards}'],
        { kubeconfig },
      )
      assert.equal(r.code, 0, r.stderr)
      assertNoPlanted(r.stdout, ns)
      assert.match(r.stdout, expect)
    }
  })

  test('an identity whose policy turns masking off (backup-restore) sees everything unchanged, without a Warning', async () => {
    const e = env()
    const token = await e.serviceAccountToken(BACKUP)
    const kubeconfig = e.gatehouse.kubeconfig({ token, name: BACKUP })
    const secret = await kubectl('1.35', ['-n', NS, 'get', 'secret', 'db', '-o', 'json'], {
      kubeconfig,
    })
    assert.equal(secret.code, 0, secret.stderr)
    const s = JSON.parse(secret.stdout) as { data: { password: string } }
    assert.equal(Buffer.from(s.data.password, 'base64').toString(), PLANTED.secretPassword)
    assert.doesNotMatch(secret.stderr, /Gatehouse masked/)
    const logs = await kubectl('1.35', ['-n', NS, 'logs', 'app'], { kubeconfig })
    assert.ok(logs.stdout.includes(PLANTED.card) && logs.stdout.includes(PEM), logs.stdout)
    const proto = await raw(
      `/api/v1/namespaces/${NS}/secrets/db`,
      { accept: 'application/vnd.kubernetes.protobuf' },
      token,
    )
    assert.equal(
      proto.headers['content-type'],
      'application/vnd.kubernetes.protobuf',
      'protobuf passes through untouched',
    )
  })

  test('nothing Gatehouse recorded holds a planted value: its data directory and its PostgreSQL store', async () => {
    const e = env()
    await sleep(500) // the audit writer's batch
    for (const { path, bytes } of filesWritten(e.gatehouse.dataDir))
      assertNoPlanted(bytes.toString('latin1'), path)
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      const tables = await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
        [SCHEMA],
      )
      let rows = 0
      let bodies = 0
      for (const { table_name } of tables.rows) {
        const r = await client.query<{ row: string }>(
          `SELECT t::text AS row FROM ${SCHEMA}.${table_name} t`,
        )
        for (const { row } of r.rows) {
          rows++
          if (row.includes('MASKED')) bodies++
          assertNoPlanted(row, `PostgreSQL ${SCHEMA}.${table_name}`)
        }
      }
      assert.ok(rows > 50, `only ${rows} rows searched`)
      assert.ok(bodies > 5, `expected masked bodies in the audit store, found ${bodies}`)
    } finally {
      await client.end()
    }
  })
})
