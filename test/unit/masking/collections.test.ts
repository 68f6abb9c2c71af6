// Per-object decisions in the JSON stream: collections: filter leaves objects out of lists,
// Tables and watches; helm release Secrets go unmasked only to identities whose policy lets
// them write that Secret. Whatever the chunking, nothing left out or masked leaks.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { JsonMaskingTransform, type JsonShape } from '../../../src/masking/json-stream.ts'
import { defaultObjectRules } from '../../../src/masking/objects.ts'
import { helmReleaseReader } from '../../../src/masking/profile.ts'
import { collectionDropper } from '../../../src/policy/index.ts'
import { compileGlobs } from '../../../src/policy/glob.ts'
import { decide, header, identity, policySet } from '../policy/helpers.ts'

async function run(
  shape: JsonShape,
  text: string,
  cuts: number[],
  opts: ConstructorParameters<typeof JsonMaskingTransform>[0] extends infer O ? Partial<O> : never,
): Promise<{ out: string; t: JsonMaskingTransform }> {
  const t = new JsonMaskingTransform({
    shape,
    rules: defaultObjectRules(),
    maxObjectBytes: 1 << 20,
    ...opts,
  })
  const out: Buffer[] = []
  t.on('data', (c: Buffer) => out.push(Buffer.from(c)))
  const done = new Promise<void>((resolve, reject) => {
    t.once('end', resolve)
    t.once('error', reject)
  })
  const b = Buffer.from(text)
  let last = 0
  for (const c of [...new Set(cuts.map((x) => x % (b.length + 1)))].sort((x, y) => x - y)) {
    t.write(b.subarray(last, c))
    last = c
  }
  t.write(b.subarray(last))
  t.end()
  await done
  return { out: Buffer.concat(out).toString('utf8'), t }
}

const secret = (ns: string, name: string, type = 'Opaque') => ({
  metadata: { name, namespace: ns },
  type,
  data: { password: Buffer.from(`pw-${ns}-${name}`).toString('base64') },
})
const drop = collectionDropper(
  [{ policy: 'p', rule: 'r', namespace: compileGlobs(['x']) }],
  'secrets',
)

describe('collections: filter in the stream', () => {
  test('lists lose the protected items, whatever the chunking', async () => {
    const list = JSON.stringify({
      kind: 'SecretList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '1' },
      items: [secret('x', 'a'), secret('y', 'b'), secret('x', 'c'), secret('z', 'd')],
    })
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 8 }), async (cuts) => {
        const { out, t } = await run('list', list, cuts, { drop, mask: false })
        const v = JSON.parse(out) as { items: { metadata: { namespace: string } }[] }
        assert.deepEqual(
          v.items.map((i) => i.metadata.namespace),
          ['y', 'z'],
        )
        assert.equal(t.dropped, 2)
        assert.doesNotMatch(out, /pw-x/)
      }),
      { numRuns: 50 },
    )
  })

  test('Table rows by their object; rows without one are left out', async () => {
    const table = JSON.stringify({
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      columnDefinitions: [{ name: 'Name' }],
      rows: [
        { cells: ['a'], object: { metadata: { name: 'a', namespace: 'x' } } },
        { cells: ['b'], object: { metadata: { name: 'b', namespace: 'y' } } },
        { cells: ['c'] },
      ],
    })
    const { out } = await run('list', table, [7, 50], { drop, mask: false })
    assert.deepEqual(
      (JSON.parse(out) as { rows: { cells: string[] }[] }).rows.map((r) => r.cells[0]),
      ['b'],
    )
  })

  test('watch events lose the protected objects; bookmarks and errors stay', async () => {
    const events = [
      { type: 'ADDED', object: secret('x', 'a') },
      { type: 'ADDED', object: secret('y', 'b') },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410 } },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n')
    const { out, t } = await run('watch', events, [3, 40, 99], { drop, mask: false })
    const types = out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type)
    assert.deepEqual(types, ['ADDED', 'BOOKMARK', 'ERROR'])
    assert.equal(t.dropped, 1)
    assert.doesNotMatch(out, /pw-x/)
  })

  test('Table watch events (kubectl get -w) lose the protected rows', async () => {
    const row = (ns: string) => ({
      cells: [ns],
      object: { metadata: { name: 'a', namespace: ns } },
    })
    const events = [
      {
        type: 'ADDED',
        object: { kind: 'Table', apiVersion: 'meta.k8s.io/v1', rows: [row('x'), row('y')] },
      },
      {
        type: 'MODIFIED',
        object: { kind: 'Table', apiVersion: 'meta.k8s.io/v1', rows: [row('x')] },
      },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n')
    const { out, t } = await run('watch', events, [17], { drop, mask: false })
    const lines = out.trim().split('\n')
    assert.equal(lines.length, 1)
    assert.deepEqual(
      (JSON.parse(lines[0]!) as { object: { rows: { cells: string[] }[] } }).object.rows.map(
        (r) => r.cells[0],
      ),
      ['y'],
    )
    assert.equal(t.dropped, 2)
  })

  test('a Namespace is in the namespace it names', () => {
    const d = collectionDropper(
      [{ policy: 'p', rule: 'r', namespace: compileGlobs(['x']) }],
      'namespaces',
    )
    assert.equal(d({ kind: 'Namespace', metadata: { name: 'x' } }), true)
    assert.equal(d({ kind: 'Namespace', metadata: { name: 'y' } }), false)
    assert.equal(d({ metadata: { name: 'node-1' } }), false) // cluster-scoped, nowhere
  })
})

describe('helm release Secrets', () => {
  const set = policySet(`${header}metadata: {name: p}
spec:
  subjects: [{name: deployer}, {name: reader}]
  rules:
    - {name: read, action: allow, verbs: [get, list, watch]}
---
${header}metadata: {name: q}
spec:
  subjects: [{name: deployer}]
  rules:
    - {name: write-apps, action: allow, verbs: [create, update, delete], resources: [secrets], namespaces: [apps]}
`)
  const release = (ns: string) => secret(ns, 'sh.helm.release.v1.web.v1', 'helm.sh/release.v1')

  test('unmasked only where the caller may update the Secret; every other Secret masked', async () => {
    assert.equal(
      decide(set, identity('deployer'), 'PUT', '/api/v1/namespaces/apps/secrets/x').action,
      'allow',
    )
    const list = JSON.stringify({
      kind: 'SecretList',
      apiVersion: 'v1',
      items: [release('apps'), release('other'), secret('apps', 'db')],
    })
    for (const [who, expected] of [
      ['deployer', [true, false, false]],
      ['reader', [false, false, false]],
    ] as const) {
      const helm = helmReleaseReader(set, identity(who), 'prod')
      const { out, t } = await run('list', list, [11, 90], {
        keep: helm.mayRead,
        notice: helm.isRelease,
      })
      const items = (JSON.parse(out) as { items: { data: { password: string } }[] }).items
      assert.deepEqual(
        items.map((i) => Buffer.from(i.data.password, 'base64').toString().startsWith('pw-')),
        expected,
        who,
      )
      assert.equal(t.noticed, who === 'deployer' ? 1 : 2)
    }
  })

  test('a watch event carries its release unmasked only to the writer', async () => {
    const event = JSON.stringify({ type: 'ADDED', object: { kind: 'Secret', ...release('apps') } })
    const writer = helmReleaseReader(set, identity('deployer'), 'prod')
    const reader = helmReleaseReader(set, identity('reader'), 'prod')
    const clear = (out: string): boolean =>
      Buffer.from(
        (JSON.parse(out) as { object: { data: { password: string } } }).object.data.password,
        'base64',
      )
        .toString()
        .startsWith('pw-apps')
    assert.equal(clear((await run('watch', event, [5], { keep: writer.mayRead })).out), true)
    assert.equal(clear((await run('watch', event, [5], { keep: reader.mayRead })).out), false)
  })
})
