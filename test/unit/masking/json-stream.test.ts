// The streaming JSON masker: whatever the chunking, a list, a Table, a watch stream or a single
// object comes out exactly as masking the whole decoded body would make it, with valid framing;
// items of a typed list (no kind of their own) are masked as their list's kind; memory stays
// bounded by one item; malformed or oversized input fails instead of passing.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { JsonMaskingTransform, type JsonShape } from '../../../src/masking/json-stream.ts'
import { defaultObjectRules, maskKubernetesJson } from '../../../src/masking/objects.ts'

const CARD = '4111 1111 1111 1111'
const rules = defaultObjectRules()

async function run(
  shape: JsonShape,
  chunks: Buffer[],
  opts: { maxObjectBytes?: number; typeHint?: { kind: string } } = {},
): Promise<{ out: string; masked: number }> {
  const t = new JsonMaskingTransform({
    shape,
    rules,
    maxObjectBytes: opts.maxObjectBytes ?? 1024 * 1024,
    ...(opts.typeHint ? { typeHint: opts.typeHint } : {}),
  })
  const out: Buffer[] = []
  t.on('data', (c: Buffer) => out.push(Buffer.from(c)))
  const done = new Promise<void>((resolve, reject) => {
    t.once('end', resolve)
    t.once('error', reject)
  })
  for (const c of chunks) t.write(c)
  t.end()
  await done
  return { out: Buffer.concat(out).toString('utf8'), masked: t.masked }
}

function split(text: string, cuts: number[]): Buffer[] {
  const b = Buffer.from(text)
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y)
  const out: Buffer[] = []
  let prev = 0
  for (const c of at) {
    out.push(b.subarray(prev, c))
    prev = c
  }
  out.push(b.subarray(prev))
  return out
}

const secretItem = (i: number) => ({
  metadata: { name: `s${i}`, namespace: 'prod', annotations: { note: `card ${CARD}` } },
  type: 'Opaque',
  data: { password: Buffer.from(`pw-${i}-hunter2`).toString('base64') },
})

const secretList = (n: number) => ({
  kind: 'SecretList',
  apiVersion: 'v1',
  metadata: { resourceVersion: '42', continue: 'abc' },
  items: Array.from({ length: n }, (_, i) => secretItem(i)),
})

test('a SecretList: items without a kind of their own are masked as Secrets, in any chunking', async () => {
  const list = secretList(5)
  const whole = maskKubernetesJson(list, rules)
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
      const r = await run('list', split(JSON.stringify(list, null, cuts.length % 2 ? 2 : 0), cuts))
      assert.deepEqual(JSON.parse(r.out), whole.value)
      assert.equal(r.masked, whole.masked)
      assert.ok(
        !r.out.includes('hunter2') &&
          !r.out.includes(Buffer.from('pw-0').toString('base64').slice(0, 6)),
      )
    }),
    { numRuns: 200 },
  )
})

test('an unstructured list (items first, kind last) and items naming their own kind', async () => {
  const text = `{"apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"data":{"k":"${Buffer.from('hunter2').toString('base64')}"}}],"kind":"List","metadata":{}}`
  const r = await run('list', split(text, [7, 31, 64, 90]))
  const v = JSON.parse(r.out) as { items: { data: { k: string } }[]; kind: string }
  assert.equal(Buffer.from(v.items[0]!.data.k, 'base64').toString(), '[MASKED:secret]')
  assert.equal(v.kind, 'List')
})

test('a Table: rows stream one by one; embedded objects and cells are masked', async () => {
  const table = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: '7' },
    columnDefinitions: [{ name: 'Name', type: 'string' }],
    rows: [
      {
        cells: ['a', `card ${CARD}`],
        object: {
          kind: 'Secret',
          apiVersion: 'v1',
          metadata: { name: 'a' },
          data: { k: 'aHVudGVyMg==' },
        },
      },
      { cells: ['b', 'plain'], object: { kind: 'PartialObjectMetadata', metadata: { name: 'b' } } },
    ],
  }
  const r = await run('list', split(JSON.stringify(table), [3, 50, 51, 120, 200]))
  assert.deepEqual(JSON.parse(r.out), maskKubernetesJson(table, rules).value)
  assert.ok(!r.out.includes('4111') && !r.out.includes('aHVudGVyMg=='))
  assert.equal(r.masked, 2)
})

test('a watch stream: every event masked and written as soon as it is whole, newline-framed', async () => {
  const events = [
    {
      type: 'ADDED',
      object: {
        kind: 'Secret',
        apiVersion: 'v1',
        metadata: { name: 'a' },
        data: { k: 'aHVudGVyMg==' },
      },
    },
    {
      type: 'BOOKMARK',
      object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '9' } },
    },
    {
      type: 'MODIFIED',
      object: {
        kind: 'ConfigMap',
        apiVersion: 'v1',
        metadata: { name: 'c' },
        data: { note: CARD, DB_PASSWORD: 'x1' },
      },
    },
  ]
  const text = events.map((e) => JSON.stringify(e) + '\n').join('')
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(), { maxLength: 10 }), async (cuts) => {
      const r = await run('watch', split(text, cuts))
      const lines = r.out.split('\n')
      assert.equal(lines.pop(), '')
      assert.deepEqual(
        lines.map((l) => JSON.parse(l) as unknown),
        events.map((e) => maskKubernetesJson(e, rules).value),
      )
      assert.ok(
        !r.out.includes('4111') && !r.out.includes('aHVudGVyMg==') && !r.out.includes('"x1"'),
      )
    }),
    { numRuns: 150 },
  )
})

test('a watch event goes out before the stream ends (kubectl get -w sees it at once)', async () => {
  const t = new JsonMaskingTransform({ shape: 'watch', rules, maxObjectBytes: 1 << 20 })
  const seen = new Promise<string>((resolve) =>
    t.once('data', (c: Buffer) => resolve(c.toString())),
  )
  t.write(Buffer.from('{"type":"ADDED","object":{"kind":"Secret","data":{"k":"aHVudGVyMg=="}}}\n'))
  const first = await seen
  assert.match(first, /W01BU0tFRDpzZWNyZXRd/) // base64 of [MASKED:secret]
  t.destroy()
})

test('a single object, a Status, and odd but valid JSON (escapes, nested brackets in strings)', async () => {
  const obj = {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: { name: 'we"ird]}{' },
    data: { 'a\\"b': 'x ] } [ {', card: `"${CARD}"`, items: '[1,2]' },
  }
  for (const shape of ['object', 'list'] as const) {
    const r = await run(shape, split(JSON.stringify(obj), [5, 17, 40, 41, 80]))
    assert.deepEqual(JSON.parse(r.out), maskKubernetesJson(obj, rules).value)
  }
  const status = {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: `bad card ${CARD}`,
    code: 422,
  }
  const r = await run('list', [Buffer.from(JSON.stringify(status))])
  assert.ok(!r.out.includes('4111'))
  assert.equal((JSON.parse(r.out) as { code: number }).code, 422)
})

test('typed object responses use the request type when the object omits its kind', async () => {
  const r = await run(
    'object',
    [Buffer.from('{"metadata":{"name":"x"},"data":{"k":"aHVudGVyMg=="}}')],
    {
      typeHint: { kind: 'Secret' },
    },
  )
  assert.ok(!r.out.includes('aHVudGVyMg=='))
})

test('malformed, truncated or oversized bodies fail rather than pass', async () => {
  await assert.rejects(run('list', [Buffer.from('{"items":[{"a":1}')]))
  await assert.rejects(run('list', [Buffer.from('{"items":[{"a":1}]}}')]))
  await assert.rejects(run('list', [Buffer.from('[1,2]')]))
  await assert.rejects(run('object', [Buffer.from('{"a":')]))
  await assert.rejects(run('watch', [Buffer.from('{"type":"ADDED"')]))
  await assert.rejects(run('watch', [Buffer.from('"x"\n')]))
  const big = JSON.stringify(secretList(1)).replace('"Opaque"', `"${'x'.repeat(5000)}"`)
  await assert.rejects(
    run('list', [Buffer.from(big)], { maxObjectBytes: 4096 }),
    /cannot be masked/,
  )
})

test('memory stays bounded by one item: a 10,000-Secret list streams without holding the whole', async () => {
  const item = JSON.stringify(secretItem(0))
  const n = 10_000
  const t = new JsonMaskingTransform({ shape: 'list', rules, maxObjectBytes: 64 * 1024 })
  let outBytes = 0
  let items = 0
  t.on('data', (c: Buffer) => {
    outBytes += c.length
  })
  const done = new Promise<void>((resolve, reject) => {
    t.once('end', resolve)
    t.once('error', reject)
  })
  // the item limit is far below the list's size: passing proves items are not accumulated
  t.write('{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[')
  for (let i = 0; i < n; i++) {
    t.write((i ? ',' : '') + item)
    items++
  }
  t.end(']}')
  await done
  assert.equal(items, n)
  assert.ok(n * item.length > 64 * 1024 * 10)
  assert.ok(outBytes > n * 50)
  assert.equal(t.masked, n * 2)
})

test('property: random lists of random objects with planted values, random chunkings: masked, valid JSON, equal to whole masking', async () => {
  const planted = fc.constantFrom(CARD, '078-05-1120', 'AKIAIOSFODNN7EXAMPLE')
  const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), planted)
  const obj = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.oneof(
      leaf,
      fc.array(leaf, { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 5 }), leaf, { maxKeys: 3 }),
    ),
    { maxKeys: 6 },
  )
  await fc.assert(
    fc.asyncProperty(
      fc.array(obj, { maxLength: 8 }),
      fc.constantFrom('ConfigMapList', 'SecretList', 'List', 'Table'),
      fc.array(fc.nat(), { maxLength: 16 }),
      fc.boolean(),
      async (items, kind, cuts, pretty) => {
        const doc =
          kind === 'Table'
            ? {
                kind,
                apiVersion: 'meta.k8s.io/v1',
                rows: items.map((o) => ({ cells: [o], object: o })),
              }
            : { kind, apiVersion: 'v1', metadata: {}, items }
        const text = JSON.stringify(doc, null, pretty ? 1 : 0)
        const r = await run('list', split(text, cuts))
        assert.deepEqual(JSON.parse(r.out), maskKubernetesJson(doc, rules).value)
        for (const v of [CARD, '078-05-1120', 'AKIAIOSFODNN7EXAMPLE']) assert.ok(!r.out.includes(v))
      },
    ),
    { numRuns: 300 },
  )
})
