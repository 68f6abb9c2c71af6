// Structural masking by kind, in every shape an object travels in: single objects, lists,
// Tables with embedded objects, watch events; Secret data stays valid base64.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LAST_APPLIED, maskKubernetesJson } from '../../../src/masking/objects.ts'

const secret = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    name,
    namespace: 'prod',
    annotations: {
      [LAST_APPLIED]: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        stringData: { password: 'hunter2-correct-horse' },
      }),
    },
  },
  type: 'Opaque',
  data: { password: Buffer.from('hunter2-correct-horse').toString('base64'), user: 'YWRtaW4=' },
})

const text = (v: unknown): string => JSON.stringify(v)

test('a Secret: data is valid base64 of a placeholder, the last-applied annotation is masked too', () => {
  const { value, masked } = maskKubernetesJson(secret('db'))
  const s = value as ReturnType<typeof secret>
  assert.equal(Buffer.from(s.data.password, 'base64').toString(), '[MASKED:secret]')
  assert.equal(Buffer.from(s.data.user, 'base64').toString(), '[MASKED:secret]')
  assert.ok(!text(value).includes('hunter2'))
  assert.ok(!text(value).includes(Buffer.from('hunter2-correct-horse').toString('base64')))
  const applied = JSON.parse(s.metadata.annotations[LAST_APPLIED]) as {
    stringData: { password: string }
  }
  assert.equal(applied.stringData.password, '[MASKED:secret]')
  assert.equal(masked, 3)
  // metadata a client needs stays
  assert.equal(s.metadata.name, 'db')
  assert.equal(s.type, 'Opaque')
})

test('lists, watch events and Tables with embedded objects', () => {
  const list = { apiVersion: 'v1', kind: 'SecretList', items: [secret('a'), secret('b')] }
  assert.ok(!text(maskKubernetesJson(list).value).includes('hunter2'))
  const event = { type: 'ADDED', object: secret('c') }
  assert.ok(!text(maskKubernetesJson(event).value).includes('hunter2'))
  const table = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    columnDefinitions: [{ name: 'Name' }, { name: 'Note' }],
    rows: [{ cells: ['d', 'card 4111 1111 1111 1111'], object: secret('d') }],
  }
  const t = text(maskKubernetesJson(table).value)
  assert.ok(!t.includes('hunter2') && !t.includes('4111 1111 1111 1111'), t)
  assert.match(t, /\[MASKED:card\]/)
})

test('env values with secret-looking names, in any pod template; others only through detectors', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: 'app',
              env: [
                { name: 'DB_PASSWORD', value: 'plain-text-pw' },
                { name: 'LOG_LEVEL', value: 'debug' },
                { name: 'NOTE', value: 'key AKIAIOSFODNN7EXAMPLE' },
                { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
              ],
            },
          ],
        },
      },
    },
  }
  const { value, masked } = maskKubernetesJson(deployment)
  const env = (value as typeof deployment).spec.template.spec.containers[0]!.env
  assert.deepEqual(env[0], { name: 'DB_PASSWORD', value: '[MASKED:env]' })
  assert.deepEqual(env[1], { name: 'LOG_LEVEL', value: 'debug' })
  assert.equal(env[2]!.value, 'key [MASKED:aws-access-key]')
  assert.deepEqual(env[3], deployment.spec.template.spec.containers[0]!.env[3])
  assert.equal(masked, 2)
})

test('ConfigMaps: secret-looking keys masked whole, card numbers in any value caught', () => {
  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'billing' },
    data: {
      api_key: 'abc',
      'cards.csv': 'alice,4111111111111111\nbob,5500000000000004\n',
      mode: 'live',
    },
  }
  const { value, masked } = maskKubernetesJson(cm)
  const d = (value as typeof cm).data
  assert.equal(d.api_key, '[MASKED:configmap-key]')
  assert.equal(d['cards.csv'], 'alice,[MASKED:card]\nbob,[MASKED:card]\n')
  assert.equal(d.mode, 'live')
  assert.equal(masked, 3)
})

test('a key named __proto__ stays an own key, as JSON.parse made it', () => {
  const v = JSON.parse('{"__proto__": {"card": "4111111111111111"}, "a": 1}') as unknown
  const out = JSON.stringify(maskKubernetesJson(v).value)
  assert.equal(out, '{"__proto__":{"card":"[MASKED:card]"},"a":1}')
})

test('objects without anything sensitive come back equal', () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { a: 'b' } },
    spec: { containers: [{ name: 'c', image: 'nginx' }] },
  }
  const { value, masked } = maskKubernetesJson(pod)
  assert.deepEqual(value, pod)
  assert.equal(masked, 0)
})

test('property: planted values in random JSON never survive; structure and other values stay', async () => {
  const fc = (await import('fast-check')).default
  const planted = [
    '4111 1111 1111 1111',
    'AKIAIOSFODNN7EXAMPLE',
    '078-05-1120',
    'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  ]
  const leaf = fc.oneof(
    fc.string({ maxLength: 20 }).filter((s) => !/\d{3}|AKIA|ghp_/.test(s)),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(...planted.map((p) => `value ${p} here`)),
  )
  const json = fc.letrec((tie) => ({
    node: fc.oneof(
      { maxDepth: 4 },
      leaf,
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), tie('node'), { maxKeys: 4 }),
    ),
  })).node
  fc.assert(
    fc.property(json, (generated) => {
      // as a response body arrives: parsed JSON (own __proto__ keys included)
      const v = JSON.parse(JSON.stringify(generated) ?? 'null') as unknown
      const { value } = maskKubernetesJson(v)
      const out = JSON.stringify(value) ?? ''
      for (const p of planted) assert.ok(!out.includes(p), `${p} survived in ${out}`)
      // same shape: the masked copy parses, and values without findings are untouched
      JSON.parse(out === '' ? 'null' : out)
      if (!planted.some((p) => (JSON.stringify(v) ?? '').includes(p)))
        assert.equal(out, JSON.stringify(v) ?? '')
    }),
    { numRuns: 300 },
  )
})
