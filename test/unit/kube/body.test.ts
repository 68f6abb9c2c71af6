import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { decodeBody, MAX_BODY_DEPTH } from '../../../src/kube/body.ts'

const JSON_TYPE = 'application/json'
const YAML_TYPE = 'application/yaml'

function decoded(text: string, type: string): unknown {
  const r = decodeBody(Buffer.from(text), type)
  assert.ok(r.ok, `expected ${JSON.stringify(text)} to decode: ${JSON.stringify(r)}`)
  return r.value
}

function refused(text: string | Buffer, type: string, why: RegExp): void {
  const r = decodeBody(typeof text === 'string' ? Buffer.from(text) : text, type)
  assert.ok(!r.ok && 'refused' in r, `expected a refusal of ${String(text)}: ${JSON.stringify(r)}`)
  assert.match(r.refused, why)
}

describe('request bodies: one strict reading', () => {
  test('JSON: the value JSON.parse gives, for bodies every decoder reads alike', () => {
    const body =
      '{"metadata":{"name":"x","labels":{"a":"b"}},"spec":{"replicas":3,"f":1.5,"n":null}}'
    assert.deepEqual(decoded(body, JSON_TYPE), JSON.parse(body))
    assert.deepEqual(
      decoded(
        '[{"op":"replace","path":"/spec/replicas","value":20}]',
        'application/json-patch+json',
      ),
      [{ op: 'replace', path: '/spec/replicas', value: 20 }],
    )
    // the same key in different objects is no duplicate
    assert.deepEqual(decoded('{"a":[{"b":1},{"b":2}],"c":{"b":"\\\\"}}', JSON_TYPE), {
      a: [{ b: 1 }, { b: 2 }],
      c: { b: '\\' },
    })
    // a key named __proto__ is an own property, as JSON.parse makes it
    const proto = decoded('{"__proto__":{"x":1}}', JSON_TYPE) as Record<string, unknown>
    assert.ok(Object.hasOwn(proto, '__proto__'))
  })

  const jsonRefusals: [string, string, RegExp][] = [
    [
      'duplicate label objects',
      '{"metadata":{"labels":{"forbidden":"x"},"labels":{"ok":"y"}}}',
      /twice/,
    ],
    ['duplicate metadata', '{"metadata":{"name":"a"},"metadata":{"labels":{"f":"x"}}}', /twice/],
    ['duplicate by escape', '{"\\u0061":1,"a":2}', /twice/],
    ['integer beyond 2^53', '{"n":9007199254740993}', /beyond 2\^53/],
    ['number out of range', '{"n":1e400}', /out of range/],
    ['identical duplicates', '{"a":1,"a":1}', /'a' twice/],
    ['duplicate after an escaped quote', '{"a":"\\"","a":1}', /'a' twice/],
    ['float spelling of a huge integer', '{"n":1e17}', /beyond 2\^53/],
    ['lone surrogate', '{"s":"\\ud800"}', /surrogate/],
    ['trailing garbage', '{"a":1} x', /does not parse/],
    ['comments', '{"a":1 /* c */}', /does not parse/],
    ['byte order mark', '\ufeff{}', /does not parse/],
  ]
  for (const [name, body, why] of jsonRefusals)
    test(`JSON refused: ${name}`, () => refused(body, JSON_TYPE, why))

  test('JSON nesting is bounded before any recursive decoder runs', () => {
    const ok = '['.repeat(MAX_BODY_DEPTH) + ']'.repeat(MAX_BODY_DEPTH)
    assert.ok(decodeBody(Buffer.from(ok), JSON_TYPE).ok)
    refused(
      '['.repeat(MAX_BODY_DEPTH + 1) + ']'.repeat(MAX_BODY_DEPTH + 1),
      JSON_TYPE,
      /nested deeper/,
    )
    refused('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000), JSON_TYPE, /nested deeper/)
    // brackets inside strings do not count
    assert.ok(decodeBody(Buffer.from(JSON.stringify({ s: '['.repeat(1000) })), JSON_TYPE).ok)
  })

  test('invalid UTF-8 is refused, not replaced', () =>
    refused(
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      JSON_TYPE,
      /UTF-8/,
    ))

  test('YAML: plain values resolved as every YAML decoder resolves them', () => {
    const doc = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: x',
      '  labels: {version: 1.2.3, "quoted": "yes", team: octo}',
      'data:',
      '  script: |',
      '    echo hi',
      '  num: "0777"',
      'spec: {replicas: 3, ratio: 1.5, big: 1e3, "off": null, "on": true, empty: ~, neg: -2}',
    ].join('\n')
    assert.deepEqual(decoded(doc, YAML_TYPE), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x', labels: { version: '1.2.3', quoted: 'yes', team: 'octo' } },
      data: { script: 'echo hi\n', num: '0777' },
      spec: { replicas: 3, ratio: 1.5, big: 1000, off: null, on: true, empty: null, neg: -2 },
    })
    // JSON is YAML (server-side apply bodies from kubectl)
    assert.deepEqual(decoded('{"a":{"b":[1,"x",true]}}', 'application/apply-patch+yaml'), {
      a: { b: [1, 'x', true] },
    })
    // an anchor nobody refers to changes nothing
    assert.deepEqual(decoded('a: &x 1\n', YAML_TYPE), { a: 1 })
  })

  const yamlRefusals: [string, string, RegExp][] = [
    [
      'merge key with alias',
      'l: &l {forbidden: x}\nmetadata:\n  labels: {<<: *l}\n',
      /alias|merge key/,
    ],
    ['merge key inline', 'metadata:\n  labels: {<<: {forbidden: x}}\n', /merge key/],
    ['alias', 'a: &x {b: 1}\nc: *x\n', /alias \*x/],
    ['duplicate key', 'metadata:\n  labels: {a: x}\n  labels: {b: y}\n', /'labels' twice/],
    ['duplicate quoted and plain key', 'a: 1\n"a": 2\n', /'a' twice/],
    ['YAML 1.1 boolean', 'spec: {hostNetwork: yes}\n', /'yes'.*quote it/],
    ['on/off', 'x: off\n', /'off'/],
    ['octal', 'mode: 0777\n', /'0777'/],
    ['hex', 'val: 0x10\n', /'0x10'/],
    ['underscores', 'val: 1_000\n', /'1_000'/],
    ['sexagesimal', 'val: 1:20\n', /'1:20'/],
    ['infinity', 'val: .inf\n', /'\.inf'/],
    ['timestamp', 't: 2024-01-01\n', /'2024-01-01'/],
    ['non-string key', '80: http\n', /unquoted key '80'/],
    ['boolean key', 'y: 2\n', /unquoted key 'y'/],
    ['explicit tag', 'a: !!str 1\n', /tag/],
    ['binary tag', 'a: !!binary aGk=\n', /tag/],
    ['two documents', 'a: 1\n---\nb: 2\n', /2 YAML documents/],
    ['directive', '%YAML 1.1\n---\na: 1\n', /directive/],
    ['integer beyond 2^53', 'val: 9007199254740993\n', /beyond 2\^53/],
    ['syntax error', 'a: [1, 2\n', /does not parse/],
  ]
  for (const [name, body, why] of yamlRefusals)
    test(`YAML refused: ${name}`, () => refused(body, YAML_TYPE, why))

  test('YAML nesting is bounded', () => {
    refused('['.repeat(5000) + ']'.repeat(5000), YAML_TYPE, /nested/)
    const block = Array.from({ length: MAX_BODY_DEPTH + 2 }, (_, i) => `${' '.repeat(i)}a:`).join(
      '\n',
    )
    refused(`${block} 1\n`, YAML_TYPE, /nested/)
  })

  test('YAML that is JSON is read as JSON at any size; other YAML is bounded (413)', () => {
    refused('{"a":1,"a":2}', 'application/apply-patch+yaml', /twice/)
    assert.deepEqual(decoded('{a: 1, b: [x]}', YAML_TYPE), { a: 1, b: ['x'] })
    const big = JSON.stringify({ data: { k: 'x'.repeat(2 * 1024 * 1024) } })
    assert.ok(decodeBody(Buffer.from(big), 'application/apply-patch+yaml').ok)
    const r = decodeBody(Buffer.from(`data:\n  k: ${'x'.repeat(2 * 1024 * 1024)}\n`), YAML_TYPE)
    assert.ok(!r.ok && 'refused' in r && r.tooLarge, JSON.stringify(r).slice(0, 200))
  })

  test('protobuf, CBOR and undeclared bodies are not decoded, and say why', () => {
    for (const type of ['application/vnd.kubernetes.protobuf', 'application/cbor', undefined]) {
      const r = decodeBody(Buffer.from([0x6b, 0x38, 0x73, 0]), type)
      assert.ok(!r.ok && 'undecoded' in r)
    }
  })
})

describe('request bodies: properties', () => {
  test('any JSON value decodes to what JSON.parse gives, and a repeated key anywhere is refused', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), {
          minKeys: 1,
        }),
        fc.nat(),
        (o, pick) => {
          const text = JSON.stringify(o)
          const r = decodeBody(Buffer.from(text), JSON_TYPE)
          const expected = JSON.parse(text) as unknown
          const unsafe = /\d{16,}|e\+?\d{2,}/i.test(text) || /[\ud800-\udfff]/.test(text)
          if (r.ok) assert.deepEqual(r.value, expected)
          else assert.ok(unsafe, `refused: ${JSON.stringify(r)}`)
          const keys = Object.keys(o)
          const key = keys[pick % keys.length]!
          const dup = `{${JSON.stringify(key)}:0,${text.slice(1)}`
          const d = decodeBody(Buffer.from(dup), JSON_TYPE)
          assert.ok(!d.ok && 'refused' in d, `not refused: ${dup}`)
        },
      ),
      { numRuns: 300 },
    )
  })
})
