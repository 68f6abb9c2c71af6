// Issue 14 classes 1-3 and issue 18 item 3, end to end: deny rules that name namespaces, names
// or object conditions hold for every request shape that can read or change what they protect
// (cluster-wide lists and watches, field and label selectors, deletecollection, every patch
// type on the object and on `scale`, PUT, create), with real kubectl 1.32 and 1.35 and raw
// HTTP against the real API server; bodies that decoders could read two ways are refused. Every
// kubectl shape runs with both kubectl 1.32 and 1.35. Conditions that cannot be evaluated fail
// closed with a Status saying why: a patch type the API server does not accept, and a policy dry
// run the API server refuses (an admission webhook with side effects, which the cluster calls
// for the real write but cannot for a dry run), under a deny and under an approve rule. The
// oracle: the API server's audit log has no event of a refused request, and the protected
// objects are as they were (read from the API server directly).
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
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
import { createCa, issueCert } from '../../harness/pki.ts'
import WebSocket from 'ws'
import { SA_NAMESPACE, useGatewayEnv } from './env.ts'

const RUN = Math.random().toString(36).slice(2, 8)
const NSX = `cov-x-${RUN}` // its Secrets are protected
const NSY = `cov-y-${RUN}`
const NSZ = `cov-z-${RUN}` // ConfigMap prod, StatefulSet db and Deployment web are protected
const NSW = `cov-w-${RUN}` // an admission webhook with side effects: no dry run succeeds here
const BOTH: readonly KubectlVersion[] = ['1.32', '1.35']
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
      resources: [statefulsets, deployments]
      when: has(object.spec) && has(object.spec.replicas) && object.spec.replicas > 10
      message: more than 10 replicas
    - name: big-replicasets
      action: approve
      verbs: [update]
      apiGroups: [apps]
      resources: [replicasets]
      namespaces: [${NSW}]
      when: object.spec.replicas > 5
      approval: {approvers: [{group: approvers}], wait: retry}
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

  function workload(
    kind: 'StatefulSet' | 'Deployment' | 'ReplicaSet',
    name: string,
    replicas: number,
    namespace = NSZ,
  ): Record<string, unknown> {
    return {
      apiVersion: 'apps/v1',
      kind,
      metadata: { name, namespace },
      spec: {
        replicas,
        ...(kind === 'StatefulSet' ? { serviceName: name } : {}),
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: 'c', image: 'example.invalid/c:1' }] },
        },
      },
    }
  }
  const statefulSet = (name: string, replicas: number): Record<string, unknown> =>
    workload('StatefulSet', name, replicas)

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
    await a.ensure(`/apis/apps/v1/namespaces/${NSZ}/deployments`, workload('Deployment', 'web', 2))
    const token = await e.serviceAccountToken('cov-bot')
    kubeconfig = e.gatehouse.kubeconfig({ token, name: `cov-bot-${RUN}` })
    http = new KubeClient({ server: e.gatehouse.url, ca: readFileSync(e.gatehouse.caFile), token })
  })

  function idOf(text: string): string | undefined {
    return /gatehouse request id ([0-9a-f-]{36})/.exec(text)?.[1]
  }

  /** A kubectl shape refused, run with each of `versions` (both by default). */
  async function kubectlRefused(
    shape: string,
    args: string[],
    why: RegExp = /Forbidden|Gatehouse denied/,
    versions: readonly KubectlVersion[] = BOTH,
  ): Promise<void> {
    for (const version of versions) {
      const r = await kubectl(version, args, { kubeconfig, timeoutMs: 30_000 })
      const where = `${shape} (kubectl ${version})`
      assert.notEqual(r.code, 0, `${where}: kubectl ${args.join(' ')} succeeded: ${r.stdout}`)
      assert.match(r.stderr, why, `${where}: ${r.stderr}`)
      const id = idOf(r.stderr)
      assert.ok(id, `${where}: no request id in ${r.stderr}`)
      refused.push({ shape: where, id })
    }
  }

  /** A raw request refused with `status`; returns the Status message. */
  async function httpRefused(
    shape: string,
    method: string,
    path: string,
    body?: string,
    contentType?: string,
    status = 403,
  ): Promise<string> {
    const r = await http.raw(method, path, body, contentType)
    assert.equal(r.statusCode, status, `${shape}: ${method} ${path}: ${r.body.slice(0, 300)}`)
    const id = idOf(r.body)
    assert.ok(id, `${shape}: no request id in ${r.body}`)
    refused.push({ shape, id })
    const s = JSON.parse(r.body) as { kind: string; code: number; message: string }
    assert.equal(s.kind, 'Status', shape)
    assert.equal(s.code, status, shape)
    return s.message
  }

  /** A kubectl shape that goes through, with each kubectl version; the last one's output. */
  async function kubectlOk(args: string[]): Promise<string> {
    let out = ''
    for (const version of BOTH) {
      const r = await kubectl(version, args, { kubeconfig, timeoutMs: 30_000 })
      assert.equal(r.code, 0, `kubectl ${version} ${args.join(' ')}: ${r.stderr}`)
      out = r.stdout
    }
    return out
  }

  const replicasOf = async (path: string): Promise<number> =>
    (await admin().json<{ spec: { replicas: number } }>('GET', path)).spec.replicas

  test('class 1: a namespaced deny covers cluster-wide lists, watches, selectors and deletecollection', async () => {
    const deny = /x-secrets/
    // the refusal says why the rule applies to a request that does not name its namespace
    await kubectlRefused(
      'get secrets -A',
      ['get', 'secrets', '-A'],
      new RegExp(
        `\\(policy 'e2e-coverage', rule 'x-secrets'; it covers this request: a request across all namespaces reaches namespace ${NSX}\\)`,
      ),
    )
    await kubectlRefused('get secrets -A -o json', ['get', 'secrets', '-A', '-o', 'json'])
    await kubectlRefused('get secrets -A -w', [
      'get',
      'secrets',
      '-A',
      '-w',
      '--request-timeout=5s',
    ])
    await kubectlRefused('get secret db -n x', ['get', 'secret', 'db', '-n', NSX], deny)
    await kubectlRefused('get secrets -n x', ['get', 'secrets', '-n', NSX], deny)
    await kubectlRefused('delete secrets --all -n x', ['delete', 'secrets', '--all', '-n', NSX])
    await kubectlRefused('delete secrets -l app=web -n x', [
      'delete',
      'secrets',
      '-l',
      'app=web',
      '-n',
      NSX,
    ])
    await kubectlRefused('patch secret -n x', [
      'patch',
      'secret',
      'db',
      '-n',
      NSX,
      '--type=merge',
      '-p',
      '{"stringData":{"password":"changed"}}',
    ])
    await kubectlRefused('create secret -n x', [
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
      ['delete', 'configmaps', '--all', '-n', NSZ],
      /\(policy 'e2e-coverage', rule 'prod-config'; it covers this request: (list|deletecollection) reads or changes what get, update, delete name; a request without a name reaches prod\)/,
    )
    await kubectlRefused('delete configmaps -l app=web', [
      'delete',
      'cm',
      '-l',
      'app=web',
      '-n',
      NSZ,
    ])
    await kubectlRefused('get configmaps -n z', ['get', 'configmaps', '-n', NSZ], deny)
    await kubectlRefused('get configmaps -A', ['get', 'configmaps', '-A'], deny)
    await kubectlRefused('get cm --field-selector metadata.name=prod', [
      'get',
      'cm',
      '-n',
      NSZ,
      '--field-selector',
      'metadata.name=prod',
    ])
    await kubectlRefused('patch cm prod --type=json', [
      'patch',
      'cm',
      'prod',
      '-n',
      NSZ,
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/data/v","value":"changed"}]',
    ])
    await kubectlRefused('apply --server-side cm prod', [
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
    assert.match(await kubectlOk(['get', 'cm', 'dev', '-n', NSZ, '-o', 'name']), /dev/)
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
      'patch --type=json',
      patch('json', '[{"op":"replace","path":"/spec/replicas","value":20}]'),
      deny,
    )
    await kubectlRefused('patch --type=merge', patch('merge', '{"spec":{"replicas":20}}'), deny)
    await kubectlRefused('patch strategic', patch('strategic', '{"spec":{"replicas":20}}'), deny)
    await kubectlRefused(
      'apply --server-side',
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
      ['replace', '-f', file('sts-put.json', statefulSet('db', 20))],
      deny,
    )
    await kubectlRefused(
      'scale',
      ['scale', 'sts', 'db', '-n', NSZ, '--replicas=20'],
      /more than 10 replicas \(policy 'e2e-coverage', rule 'replicas-cap'; it covers this request: patch statefulsets\/scale is a patch of the statefulsets itself\)/,
    )
    await kubectlRefused(
      'patch scale --type=json',
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
    await kubectlOk(['scale', 'sts', 'db', '-n', NSZ, '--replicas=5'])
    await kubectlOk(patch('json', '[{"op":"replace","path":"/spec/replicas","value":3}]'))
    const stored = await admin().json<{ spec: { replicas: number } }>('GET', `${sts}/db`)
    assert.equal(stored.spec.replicas, 3)
    assert.equal((await admin().raw('GET', `${sts}/big-${RUN}`)).statusCode, 404)
  })

  test("class 2 on scale: strategic merge and server-side apply of a StatefulSet's and a Deployment's scale", async () => {
    const deny = /more than 10 replicas/
    for (const [resource, short, name] of [
      ['statefulsets', 'sts', 'db'],
      ['deployments', 'deploy', 'web'],
    ] as const) {
      const path = `/apis/apps/v1/namespaces/${NSZ}/${resource}/${name}`
      const before = await replicasOf(path)
      assert.ok(before <= 10, `${resource}: ${before} replicas before`)
      await kubectlRefused(
        `patch ${short} --subresource=scale --type=strategic`,
        [
          'patch',
          short,
          name,
          '-n',
          NSZ,
          '--subresource=scale',
          '--type=strategic',
          '-p',
          '{"spec":{"replicas":20}}',
        ],
        deny,
      )
      await kubectlRefused(
        `patch ${short} --subresource=scale --type=merge`,
        [
          'patch',
          short,
          name,
          '-n',
          NSZ,
          '--subresource=scale',
          '--type=merge',
          '-p',
          '{"spec":{"replicas":20}}',
        ],
        deny,
      )
      const strategic = await httpRefused(
        `strategic merge patch on ${resource}/scale`,
        'PATCH',
        `${path}/scale`,
        '{"spec":{"replicas":20}}',
        'application/strategic-merge-patch+json',
      )
      assert.match(strategic, deny)
      // (kubectl apply --server-side --subresource=scale sends the workload's apps/v1 object,
      // which the API server refuses on scale: an apply of the Scale itself is sent raw)
      for (const [type, body] of [
        [
          'application/apply-patch+yaml',
          `apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: ${name}\n  namespace: ${NSZ}\nspec:\n  replicas: 20\n`,
        ],
        [
          'application/apply-patch+yaml',
          JSON.stringify({
            apiVersion: 'autoscaling/v1',
            kind: 'Scale',
            metadata: { name, namespace: NSZ },
            spec: { replicas: 20 },
          }),
        ],
      ] as const) {
        const applied = await httpRefused(
          `server-side apply on ${resource}/scale (${body.startsWith('{') ? 'JSON' : 'YAML'})`,
          'PATCH',
          `${path}/scale?fieldManager=e2e-scale&force=true`,
          body,
          type,
        )
        assert.match(applied, deny)
        assert.match(
          applied,
          /it covers this request: patch \w+\/scale is an? \w+ of the \w+ itself/,
        )
      }
      assert.equal(await replicasOf(path), before, `${resource}: replicas changed`)
      // the same patch types within the cap go through
      const ok = await http.raw(
        'PATCH',
        `${path}/scale?fieldManager=e2e-scale&force=true`,
        JSON.stringify({
          apiVersion: 'autoscaling/v1',
          kind: 'Scale',
          metadata: { name, namespace: NSZ },
          spec: { replicas: 4 },
        }),
        'application/apply-patch+yaml',
      )
      assert.equal(ok.statusCode, 200, ok.body)
      assert.equal(await replicasOf(path), 4)
    }
  })

  test('condition errors fail closed: an unknown patch type, a dry run the API server refuses (deny and approve)', async () => {
    const sts = `/apis/apps/v1/namespaces/${NSZ}/statefulsets/db`
    const before = await replicasOf(sts)
    // a patch type the API server does not accept as a patch: nothing can say what it would store
    for (const type of ['text/plain', 'application/x-gatehouse-patch+json']) {
      const message = await httpRefused(
        `PATCH as ${type}`,
        'PATCH',
        sts,
        '{"spec":{"replicas":20}}',
        type,
      )
      assert.match(
        message,
        /\(policy 'e2e-coverage', rule 'replicas-cap'; its condition could not be evaluated \(the request object is not available: the API server's dry run answered 415 UnsupportedMediaType[^)]*\), so the rule refuses the request; it covers this request: patch reads or changes what create, update name\)/,
      )
    }
    assert.equal(await replicasOf(sts), before, 'stored')

    // An admission webhook that refuses every dry run (it sees request.dryRun) and allows real
    // writes, so Gatehouse cannot know the object a patch would store. (Until 1.21 a v1beta1
    // webhook with sideEffects Unknown made the API server itself refuse dry runs; v1beta1 is
    // gone since 1.22 and v1 allows only None and NoneOnDryRun.)
    const e = env()
    const pki = join(e.dir, `webhook-${RUN}`)
    mkdirSync(pki, { recursive: true })
    const ca = createCa(pki, 'webhook-ca')
    const cert = issueCert(ca, 'webhook')
    let reviews = 0
    const webhook = createServer(
      { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) },
      (req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          reviews++
          const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            apiVersion: string
            request: { uid: string; dryRun?: boolean }
          }
          const dryRun = review.request.dryRun === true
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(
            JSON.stringify({
              apiVersion: review.apiVersion,
              kind: 'AdmissionReview',
              response: {
                uid: review.request.uid,
                allowed: !dryRun,
                ...(dryRun
                  ? { status: { code: 400, reason: 'BadRequest', message: 'no dry runs here' } }
                  : {}),
              },
            }),
          )
        })
      },
    )
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r))
    const a = admin()
    const hook = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/gatehouse-cov-${RUN}`
    try {
      await a.ensure('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: NSW, labels: { 'gatehouse-cov-webhook': RUN } },
      })
      await a.ensure(`/apis/apps/v1/namespaces/${NSW}/statefulsets`, {
        ...statefulSet('db', 2),
        metadata: { name: 'db', namespace: NSW },
      })
      await a.ensure(
        `/apis/apps/v1/namespaces/${NSW}/replicasets`,
        workload('ReplicaSet', 'rs', 2, NSW),
      )
      const created = await a.raw(
        'POST',
        '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
        JSON.stringify({
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingWebhookConfiguration',
          metadata: { name: `gatehouse-cov-${RUN}` },
          webhooks: [
            {
              name: 'side-effects.gatehouse.test',
              sideEffects: 'NoneOnDryRun',
              failurePolicy: 'Ignore',
              admissionReviewVersions: ['v1'],
              namespaceSelector: { matchLabels: { 'gatehouse-cov-webhook': RUN } },
              rules: [
                {
                  apiGroups: ['apps'],
                  apiVersions: ['*'],
                  operations: ['CREATE', 'UPDATE'],
                  resources: [
                    'statefulsets',
                    'statefulsets/scale',
                    'replicasets',
                    'replicasets/scale',
                  ],
                },
              ],
              clientConfig: {
                url: `https://127.0.0.1:${(webhook.address() as AddressInfo).port}/validate`,
                caBundle: readFileSync(ca.certFile).toString('base64'),
              },
            },
          ],
        }),
        'application/json',
      )
      assert.equal(created.statusCode, 201, created.body)
      // the API server reads new webhook configurations within a second or so
      const wsts = `/apis/apps/v1/namespaces/${NSW}/statefulsets/db`
      const rs = `/apis/apps/v1/namespaces/${NSW}/replicasets/rs`
      for (let i = 0; ; i++) {
        const dry = await a.raw('PATCH', `${wsts}?dryRun=All`, '{}', 'application/merge-patch+json')
        if (dry.statusCode === 400 && /no dry runs here/.test(dry.body)) break
        assert.ok(i < 100, `the webhook is not in force: ${dry.statusCode} ${dry.body}`)
        await new Promise((r) => setTimeout(r, 100))
      }
      const dryRunRefused =
        /its condition could not be evaluated \(the request object is not available: the API server's dry run answered 400 BadRequest: admission webhook \\?"side-effects\.gatehouse\.test\\?" denied the request: no dry runs here\), so the rule refuses the request/
      // under a deny: 3 replicas is within the cap, but nobody can tell
      await kubectlRefused(
        'patch under a deny, dry run refused',
        ['patch', 'sts', 'db', '-n', NSW, '--type=merge', '-p', '{"spec":{"replicas":3}}'],
        new RegExp(`rule 'replicas-cap'; ${dryRunRefused.source}`),
      )
      const scaled = await httpRefused(
        'scale under a deny, dry run refused',
        'PATCH',
        `${wsts}/scale`,
        '{"spec":{"replicas":3}}',
        'application/merge-patch+json',
      )
      assert.match(scaled, dryRunRefused)
      // under an approve rule: nobody is asked to approve a request nobody could evaluate
      await kubectlRefused(
        'patch under an approve rule, dry run refused',
        ['patch', 'rs', 'rs', '-n', NSW, '--type=merge', '-p', '{"spec":{"replicas":3}}'],
        new RegExp(`rule 'big-replicasets'; ${dryRunRefused.source}`),
      )
      assert.equal(await replicasOf(wsts), 2)
      assert.equal(await replicasOf(rs), 2)
      // what Gatehouse refused, the cluster itself would have let through (the webhook allows)
      const seen = reviews
      const direct = await a.raw(
        'PATCH',
        rs,
        '{"spec":{"replicas":3}}',
        'application/merge-patch+json',
      )
      assert.equal(direct.statusCode, 200, direct.body)
      assert.equal(reviews, seen + 1, 'the webhook saw the real write')
    } finally {
      await a.raw('DELETE', hook)
      webhook.close()
    }
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
    const readerConfig = e.gatehouse.kubeconfig({ token, name: `cov-reader-${RUN}` })
    for (const version of BOTH) {
      const r = await kubectl(version, ['get', 'secrets', '-A'], { kubeconfig: readerConfig })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(NSY))
      assert.doesNotMatch(r.stdout, new RegExp(NSX))
      assert.match(
        r.stderr,
        /Warning: Gatehouse leaves out of this list the objects policy 'e2e-coverage-filter', rule 'x-secrets' protect \(\d+ left out\)/,
      )
    }
    // kubectl get -A -w (both versions at once): a Table list, then Table watch events, both
    // without x's objects
    const watching = BOTH.map((version) =>
      kubectl(version, ['get', 'secrets', '-A', '-w', '--request-timeout=6s'], {
        kubeconfig: readerConfig,
        timeoutMs: 20_000,
      }),
    )
    await new Promise((r) => setTimeout(r, 2000))
    for (const ns of [NSX, NSY])
      await admin().ensure(`/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `during-watch-${ns}` },
        stringData: { v: 'x' },
      })
    for (const w of await Promise.all(watching)) {
      assert.match(w.stdout, new RegExp(`during-watch-${NSY}`), w.stdout + w.stderr)
      assert.doesNotMatch(w.stdout, new RegExp(NSX), w.stdout)
    }
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
