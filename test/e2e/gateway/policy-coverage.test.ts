// Issue 14 classes 1-3 and issue 18 item 3, end to end: deny rules that name namespaces, names
// or object conditions hold for every request shape that can read or change what they protect
// (cluster-wide lists and watches, field and label selectors, deletecollection, every patch
// type on the object and on `scale`, PUT, create), with real kubectl 1.32 and 1.35 and raw
// HTTP against the real API server; bodies that decoders could read two ways are refused. The
// oracle: the API server's audit log has no event of a refused request, and the protected
// objects are as they were.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import {
  adminClient,
  ensureNamespace,
  kubectl,
  readAuditEvents,
  type KubectlVersion,
} from '../../harness/index.ts'
import { KubeClient } from '../../harness/kube-client.ts'
import WebSocket from 'ws'
import { SA_NAMESPACE, useGatewayEnv } from './env.ts'

const RUN = Math.random().toString(36).slice(2, 8)
const NSX = `cov-x-${RUN}` // its Secrets are protected
const NSY = `cov-y-${RUN}`
const NSZ = `cov-z-${RUN}` // ConfigMap prod and StatefulSet db are protected
const BOT = `k8s:serviceaccount:${SA_NAMESPACE}:cov-bot`
const READER = `k8s:serviceaccount:${SA_NAMESPACE}:cov-reader`

function policies(dir: string): string[] {
  const file = join(dir, 'coverage-policies.yaml')
  writeFileSync(
    file,
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: e2e-coverage}
spec:
  subjects: [{name: '${BOT}'}]
  rules:
    - {name: everything, action: allow, verbs: ['*'], mask: {enabled: false}}
    - name: x-secrets
      action: deny
      verbs: [get, list, watch, create, update, patch, delete]
      resources: [secrets]
      namespaces: [${NSX}]
    - name: prod-config
      action: deny
      verbs: [get, update, delete]
      resources: [configmaps]
      names: [prod]
    - name: replicas-cap
      action: deny
      verbs: [create, update]
      apiGroups: [apps]
      resources: [statefulsets]
      when: has(object.spec) && has(object.spec.replicas) && object.spec.replicas > 10
      message: more than 10 replicas
    - name: no-forbidden-label
      action: deny
      verbs: [create, update]
      resources: [configmaps]
      when: has(object.metadata.labels) && 'forbidden' in object.metadata.labels
---
apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: e2e-coverage-filter}
spec:
  subjects: [{name: '${READER}'}]
  rules:
    - {name: read, action: allow, verbs: [get, list, watch], mask: {enabled: false}}
    - name: x-secrets
      action: deny
      verbs: [get, list, watch]
      resources: [secrets]
      namespaces: [${NSX}]
      collections: filter
`,
  )
  return [file]
}

interface Refusal {
  shape: string
  id: string
}

describe('deny rules cover every request shape (issue 14 classes 1-3, issue 18 item 3)', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => policies(dir) })
  let kubeconfig = ''
  let http: KubeClient
  const refused: Refusal[] = []

  const admin = (): KubeClient => adminClient(env().cluster)

  function statefulSet(name: string, replicas: number): Record<string, unknown> {
    return {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, namespace: NSZ },
      spec: {
        replicas,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: 'c', image: 'example.invalid/c:1' }] },
        },
      },
    }
  }

  function file(name: string, body: unknown): string {
    const path = join(env().dir, `${RUN}-${name}`)
    writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body))
    return path
  }

  before(async () => {
    const e = env()
    const a = admin()
    for (const ns of [NSX, NSY, NSZ]) await ensureNamespace(a, ns)
    await a.ensure(`/api/v1/namespaces/${NSX}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', labels: { app: 'web' } },
      stringData: { password: 'protected-value' },
    })
    await a.ensure(`/api/v1/namespaces/${NSY}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'other' },
      stringData: { password: 'readable-value' },
    })
    for (const name of ['prod', 'dev', 'dev2'])
      await a.ensure(`/api/v1/namespaces/${NSZ}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, labels: { app: 'web' } },
        data: { v: name },
      })
    await a.ensure(`/apis/apps/v1/namespaces/${NSZ}/statefulsets`, statefulSet('db', 2))
    const token = await e.serviceAccountToken('cov-bot')
    kubeconfig = e.gatehouse.kubeconfig({ token, name: `cov-bot-${RUN}` })
    http = new KubeClient({ server: e.gatehouse.url, ca: readFileSync(e.gatehouse.caFile), token })
  })

  function idOf(text: string): string | undefined {
    return /gatehouse request id ([0-9a-f-]{36})/.exec(text)?.[1]
  }

  async function kubectlRefused(
    shape: string,
    version: KubectlVersion,
    args: string[],
    why: RegExp = /Forbidden|Gatehouse denied/,
  ): Promise<void> {
    const r = await kubectl(version, args, { kubeconfig, timeoutMs: 30_000 })
    assert.notEqual(r.code, 0, `${shape}: kubectl ${args.join(' ')} succeeded: ${r.stdout}`)
    assert.match(r.stderr, why, `${shape}: ${r.stderr}`)
    const id = idOf(r.stderr)
    assert.ok(id, `${shape}: no request id in ${r.stderr}`)
    refused.push({ shape, id })
  }

  async function httpRefused(
    shape: string,
    method: string,
    path: string,
    body?: string,
    contentType?: string,
    status = 403,
  ): Promise<void> {
    const r = await http.raw(method, path, body, contentType)
    assert.equal(r.statusCode, status, `${shape}: ${method} ${path}: ${r.body.slice(0, 300)}`)
    const id = idOf(r.body)
    assert.ok(id, `${shape}: no request id in ${r.body}`)
    refused.push({ shape, id })
  }

  async function kubectlOk(version: KubectlVersion, args: string[]): Promise<string> {
    const r = await kubectl(version, args, { kubeconfig, timeoutMs: 30_000 })
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  test('class 1: a namespaced deny covers cluster-wide lists, watches, selectors and deletecollection', async () => {
    const deny = /x-secrets/
    await kubectlRefused('get secrets -A (1.32)', '1.32', ['get', 'secrets', '-A'], deny)
    await kubectlRefused('get secrets -A (1.35)', '1.35', ['get', 'secrets', '-A'], deny)
    await kubectlRefused('get secrets -A -o json', '1.35', ['get', 'secrets', '-A', '-o', 'json'])
    await kubectlRefused('get secrets -A -w', '1.32', [
      'get',
      'secrets',
      '-A',
      '-w',
      '--request-timeout=5s',
    ])
    await kubectlRefused('get secret db -n x', '1.32', ['get', 'secret', 'db', '-n', NSX], deny)
    await kubectlRefused('get secrets -n x', '1.35', ['get', 'secrets', '-n', NSX], deny)
    await kubectlRefused('delete secrets --all -n x', '1.35', [
      'delete',
      'secrets',
      '--all',
      '-n',
      NSX,
    ])
    await kubectlRefused('delete secrets -l app=web -n x', '1.32', [
      'delete',
      'secrets',
      '-l',
      'app=web',
      '-n',
      NSX,
    ])
    await kubectlRefused('patch secret -n x', '1.32', [
      'patch',
      'secret',
      'db',
      '-n',
      NSX,
      '--type=merge',
      '-p',
      '{"stringData":{"password":"changed"}}',
    ])
    await kubectlRefused('create secret -n x', '1.35', [
      'create',
      'secret',
      'generic',
      'new',
      '-n',
      NSX,
      '--from-literal=a=b',
    ])
    await httpRefused('GET /api/v1/secrets', 'GET', '/api/v1/secrets')
    await httpRefused(
      'fieldSelector metadata.namespace=x',
      'GET',
      `/api/v1/secrets?fieldSelector=metadata.namespace%3D${NSX}`,
    )
    await httpRefused(
      'fieldSelector ns!=y',
      'GET',
      `/api/v1/secrets?fieldSelector=metadata.namespace!%3D${NSY}`,
    )
    await httpRefused(
      'labelSelector across namespaces',
      'GET',
      '/api/v1/secrets?labelSelector=app%3Dweb',
    )
    await httpRefused('limit=1 page', 'GET', '/api/v1/secrets?limit=1')
    await httpRefused('watch=true', 'GET', '/api/v1/secrets?watch=true&timeoutSeconds=1')
    await httpRefused('legacy /watch/ path', 'GET', '/api/v1/watch/secrets?timeoutSeconds=1')
    await httpRefused('deletecollection across namespaces', 'DELETE', '/api/v1/secrets')
    await httpRefused('deletecollection in x', 'DELETE', `/api/v1/namespaces/${NSX}/secrets`)
    await httpRefused(
      'PUT secret',
      'PUT',
      `/api/v1/namespaces/${NSX}/secrets/db`,
      JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, data: {} }),
    )
    // what the rule does not name is still served
    const other = await http.raw('GET', `/api/v1/secrets?fieldSelector=metadata.namespace%3D${NSY}`)
    assert.equal(other.statusCode, 200, other.body)
    assert.match(other.body, /"name":"other"/)
    const secret = await admin().json<{ data: { password: string } }>(
      'GET',
      `/api/v1/namespaces/${NSX}/secrets/db`,
    )
    assert.equal(Buffer.from(secret.data.password, 'base64').toString(), 'protected-value')
  })

  test('class 3: a name-scoped deny covers collections and name field selectors', async () => {
    const deny = /prod-config/
    const cm = `/api/v1/namespaces/${NSZ}/configmaps`
    await kubectlRefused(
      'delete configmaps --all',
      '1.32',
      ['delete', 'configmaps', '--all', '-n', NSZ],
      deny,
    )
    await kubectlRefused('delete configmaps -l app=web', '1.35', [
      'delete',
      'cm',
      '-l',
      'app=web',
      '-n',
      NSZ,
    ])
    await kubectlRefused('get configmaps -n z', '1.32', ['get', 'configmaps', '-n', NSZ], deny)
    await kubectlRefused('get configmaps -A', '1.35', ['get', 'configmaps', '-A'], deny)
    await kubectlRefused('get cm --field-selector metadata.name=prod', '1.35', [
      'get',
      'cm',
      '-n',
      NSZ,
      '--field-selector',
      'metadata.name=prod',
    ])
    await kubectlRefused('patch cm prod --type=json', '1.32', [
      'patch',
      'cm',
      'prod',
      '-n',
      NSZ,
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/data/v","value":"changed"}]',
    ])
    await kubectlRefused('apply --server-side cm prod', '1.35', [
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      file('cm-prod.json', {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'prod', namespace: NSZ },
        data: { v: 'changed' },
      }),
    ])
    await httpRefused('deletecollection labelSelector', 'DELETE', `${cm}?labelSelector=app%3Dweb`)
    await httpRefused(
      'deletecollection name selector',
      'DELETE',
      `${cm}?fieldSelector=metadata.name%3Dprod`,
    )
    await httpRefused('list name selector', 'GET', `${cm}?fieldSelector=metadata.name%3Dprod`)
    await httpRefused('list name selector ==', 'GET', `${cm}?fieldSelector=metadata.name%3D%3Dprod`)
    await httpRefused(
      'watch name selector',
      'GET',
      `${cm}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dprod`,
    )
    await httpRefused(
      'PUT cm prod',
      'PUT',
      `${cm}/prod`,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'prod' },
        data: { v: 'x' },
      }),
    )
    // the rest of the collection stays reachable
    assert.match(await kubectlOk('1.32', ['get', 'cm', 'dev', '-n', NSZ, '-o', 'name']), /dev/)
    const ok = await http.raw('DELETE', `${cm}?fieldSelector=metadata.name%3Ddev2`)
    assert.equal(ok.statusCode, 200, ok.body)
    const prod = await admin().json<{ data: { v: string } }>('GET', `${cm}/prod`)
    assert.equal(prod.data.v, 'prod')
  })

  test('class 2: conditions see the object as stored, for every patch type, PUT, create and scale', async () => {
    const deny = /more than 10 replicas/
    const sts = `/apis/apps/v1/namespaces/${NSZ}/statefulsets`
    const patch = (type: string, p: string): string[] => [
      'patch',
      'sts',
      'db',
      '-n',
      NSZ,
      `--type=${type}`,
      '-p',
      p,
    ]
    await kubectlRefused(
      'patch --type=json (1.32)',
      '1.32',
      patch('json', '[{"op":"replace","path":"/spec/replicas","value":20}]'),
      deny,
    )
    await kubectlRefused(
      'patch --type=merge (1.35)',
      '1.35',
      patch('merge', '{"spec":{"replicas":20}}'),
      deny,
    )
    await kubectlRefused(
      'patch strategic (1.32)',
      '1.32',
      patch('strategic', '{"spec":{"replicas":20}}'),
      deny,
    )
    await kubectlRefused(
      'apply --server-side',
      '1.35',
      [
        'apply',
        '--server-side',
        '--force-conflicts',
        '-f',
        file('sts-20.json', statefulSet('db', 20)),
      ],
      deny,
    )
    await kubectlRefused(
      'replace (PUT)',
      '1.32',
      ['replace', '-f', file('sts-put.json', statefulSet('db', 20))],
      deny,
    )
    await kubectlRefused(
      'scale (1.32)',
      '1.32',
      ['scale', 'sts', 'db', '-n', NSZ, '--replicas=20'],
      deny,
    )
    await kubectlRefused(
      'scale (1.35)',
      '1.35',
      ['scale', 'sts', 'db', '-n', NSZ, '--replicas=20'],
      deny,
    )
    await kubectlRefused(
      'patch scale --type=json',
      '1.35',
      [
        'patch',
        'sts',
        'db',
        '-n',
        NSZ,
        '--subresource=scale',
        '--type=json',
        '-p',
        '[{"op":"replace","path":"/spec/replicas","value":20}]',
      ],
      deny,
    )
    await kubectlRefused(
      'create 20 replicas',
      '1.35',
      ['create', '-f', file('sts-new.json', statefulSet(`big-${RUN}`, 20))],
      deny,
    )
    await httpRefused(
      'JSON patch on scale',
      'PATCH',
      `${sts}/db/scale`,
      '[{"op":"replace","path":"/spec/replicas","value":20}]',
      'application/json-patch+json',
    )
    await httpRefused(
      'merge patch on scale',
      'PATCH',
      `${sts}/db/scale`,
      '{"spec":{"replicas":20}}',
      'application/merge-patch+json',
    )
    await httpRefused(
      'PUT scale',
      'PUT',
      `${sts}/db/scale`,
      JSON.stringify({
        apiVersion: 'autoscaling/v1',
        kind: 'Scale',
        metadata: { name: 'db', namespace: NSZ },
        spec: { replicas: 20 },
      }),
    )
    await httpRefused(
      'JSON patch with two operations',
      'PATCH',
      `${sts}/db`,
      '[{"op":"add","path":"/metadata/annotations","value":{"n":"x"}},{"op":"replace","path":"/spec/replicas","value":11}]',
      'application/json-patch+json',
    )
    await httpRefused(
      'server-side apply as YAML',
      'PATCH',
      `${sts}/db?fieldManager=e2e&force=true`,
      `apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 20\n`,
      'application/apply-patch+yaml',
    )
    // within the cap, the same shapes go through
    await kubectlOk('1.32', ['scale', 'sts', 'db', '-n', NSZ, '--replicas=5'])
    await kubectlOk('1.35', patch('json', '[{"op":"replace","path":"/spec/replicas","value":3}]'))
    const stored = await admin().json<{ spec: { replicas: number } }>('GET', `${sts}/db`)
    assert.equal(stored.spec.replicas, 3)
    assert.equal((await admin().raw('GET', `${sts}/big-${RUN}`)).statusCode, 404)
  })

  test('issue 18.3: bodies decoders read differently are refused (400) and never stored', async () => {
    const cm = `/api/v1/namespaces/${NSZ}/configmaps`
    const name = (n: string): string => `dup-${n}-${RUN}`
    const bodies: [string, string, string, string][] = [
      [
        'duplicate labels',
        name('a'),
        `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name('a')}","labels":{"forbidden":"x"},"labels":{"ok":"y"}}}`,
        'application/json',
      ],
      [
        'duplicate metadata',
        name('b'),
        `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${name('b')}"},"metadata":{"name":"${name('b')}","labels":{"forbidden":"x"}}}`,
        'application/json',
      ],
      [
        'YAML merge key',
        name('c'),
        `apiVersion: v1\nkind: ConfigMap\nbase: &l {forbidden: x}\nmetadata:\n  name: ${name('c')}\n  labels: {<<: *l}\n`,
        'application/yaml',
      ],
      [
        'YAML duplicate key',
        name('d'),
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name('d')}\n  labels: {forbidden: x}\n  labels: {ok: y}\n`,
        'application/yaml',
      ],
    ]
    for (const [shape, n, body, type] of bodies) {
      const r = await http.raw('POST', cm, body, type)
      assert.equal(r.statusCode, 400, `${shape}: ${r.body}`)
      assert.match(r.body, /BadRequest/)
      const id = idOf(r.body)
      assert.ok(id, r.body)
      refused.push({ shape, id })
      assert.equal((await admin().raw('GET', `${cm}/${n}`)).statusCode, 404, `${shape}: stored`)
    }
    // and written once, the forbidden label is refused by the condition
    await httpRefused(
      'forbidden label, written once',
      'POST',
      cm,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: name('e'), labels: { forbidden: 'x' } },
      }),
      'application/json',
    )
    await httpRefused(
      'forbidden label added by merge patch',
      'PATCH',
      `${cm}/dev`,
      '{"metadata":{"labels":{"forbidden":"x"}}}',
      'application/merge-patch+json',
    )
  })

  test('collections: filter answers cluster-wide lists and watches without the protected namespace', async () => {
    const e = env()
    const token = await e.serviceAccountToken('cov-reader')
    const reader = new KubeClient({
      server: e.gatehouse.url,
      ca: readFileSync(e.gatehouse.caFile),
      token,
    })
    const list = await reader.raw('GET', '/api/v1/secrets')
    assert.equal(list.statusCode, 200, list.body)
    const items = (JSON.parse(list.body) as { items: { metadata: { namespace: string } }[] }).items
    assert.ok(items.some((i) => i.metadata.namespace === NSY))
    assert.ok(!items.some((i) => i.metadata.namespace === NSX), 'a filtered Secret was served')
    assert.doesNotMatch(list.body, /protected-value|cHJvdGVjdGVkLXZhbHVl/)
    const watch = await reader.raw('GET', '/api/v1/secrets?watch=1&timeoutSeconds=2')
    assert.equal(watch.statusCode, 200)
    assert.match(watch.body, new RegExp(`"namespace":"${NSY}"`))
    assert.doesNotMatch(watch.body, new RegExp(`"namespace":"${NSX}"`))
    const r = await kubectl('1.35', ['get', 'secrets', '-A'], {
      kubeconfig: e.gatehouse.kubeconfig({ token, name: `cov-reader-${RUN}` }),
    })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(NSY))
    assert.doesNotMatch(r.stdout, new RegExp(NSX))
    assert.match(
      r.stderr,
      /Warning: Gatehouse leaves out of this list the objects policy 'e2e-coverage-filter', rule 'x-secrets' protect \(\d+ left out\)/,
    )
    // kubectl get -A -w: a Table list, then Table watch events, both without x's objects
    const watching = kubectl('1.32', ['get', 'secrets', '-A', '-w', '--request-timeout=6s'], {
      kubeconfig: e.gatehouse.kubeconfig({ token, name: `cov-reader-w-${RUN}` }),
      timeoutMs: 20_000,
    })
    await new Promise((r) => setTimeout(r, 2000))
    for (const ns of [NSX, NSY])
      await admin().ensure(`/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `during-watch-${ns}` },
        stringData: { v: 'x' },
      })
    const w = await watching
    assert.match(w.stdout, new RegExp(`during-watch-${NSY}`), w.stdout + w.stderr)
    assert.doesNotMatch(w.stdout, new RegExp(NSX), w.stdout)
    // a WebSocket watch cannot be filtered in the response stream: refused, not served whole
    const wsStatus = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(
        `${e.gatehouse.url.replace('https', 'wss')}/api/v1/secrets?watch=1`,
        {
          ca: readFileSync(e.gatehouse.caFile),
          headers: { authorization: `Bearer ${token}` },
        },
      )
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0)
        ws.terminate()
      })
      ws.on('open', () => {
        ws.close()
        reject(new Error('the WebSocket watch was opened'))
      })
      ws.on('error', () => undefined)
    })
    // (400 since upgrades exist only for exec, attach and port-forward; 403 from the filter
    // otherwise: refused either way, never served unfiltered)
    assert.ok(wsStatus === 400 || wsStatus === 403, `status ${wsStatus}`)
    // the namespace itself stays refused
    const direct = await reader.raw('GET', `/api/v1/namespaces/${NSX}/secrets`)
    assert.equal(direct.statusCode, 403)
  })

  test('at least 40 shapes were refused, and none of them reached the API server', async () => {
    assert.ok(refused.length >= 40, `only ${refused.length} refused shapes`)
    // the log backend writes after the response
    await new Promise((r) => setTimeout(r, 1500))
    const ids = new Set(readAuditEvents(env().cluster.auditLogPath).map((e) => e.auditID))
    const reached = refused.filter((r) => ids.has(r.id))
    assert.deepEqual(reached, [], 'refused requests in the API server audit log')
  })
})
