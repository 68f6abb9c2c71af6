import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { withResourceVersion } from '../../../src/kube/precondition.ts'

const json = (value: unknown) => ({ value, format: 'json' as const })
const parsed = (b: Buffer | undefined): unknown => (b ? JSON.parse(b.toString()) : undefined)

describe('writes pinned to the resourceVersion policy judged', () => {
  test('JSON Patch: a replace of metadata.resourceVersion comes first', () => {
    const ops = [{ op: 'replace', path: '/spec/replicas', value: 3 }]
    assert.deepEqual(
      parsed(withResourceVersion(json(ops), 'patch', 'application/json-patch+json', '42')),
      [{ op: 'replace', path: '/metadata/resourceVersion', value: '42' }, ...ops],
    )
  })

  test('merge, strategic, apply and PUT bodies get metadata.resourceVersion, other fields kept', () => {
    for (const [verb, type] of [
      ['patch', 'application/merge-patch+json'],
      ['patch', 'application/strategic-merge-patch+json'],
      ['patch', 'application/apply-patch+yaml'],
      ['update', 'application/json'],
    ] as const) {
      const body = { metadata: { name: 'db', labels: { a: 'b' } }, spec: { replicas: 3 } }
      assert.deepEqual(parsed(withResourceVersion(json(body), verb, type, '7')), {
        metadata: { name: 'db', labels: { a: 'b' }, resourceVersion: '7' },
        spec: { replicas: 3 },
      })
    }
    assert.deepEqual(
      parsed(withResourceVersion(json({ spec: {} }), 'patch', 'application/merge-patch+json', '7')),
      {
        spec: {},
        metadata: { resourceVersion: '7' },
      },
    )
  })

  test("a body's own resourceVersion stands; undecoded bodies and other verbs are left alone", () => {
    const own = json({ metadata: { resourceVersion: '5' } })
    assert.equal(withResourceVersion(own, 'update', 'application/json', '7'), undefined)
    assert.equal(
      withResourceVersion(
        { unavailable: 'protobuf' },
        'update',
        'application/vnd.kubernetes.protobuf',
        '7',
      ),
      undefined,
    )
    assert.equal(withResourceVersion(json({}), 'create', 'application/json', '7'), undefined)
    assert.equal(
      withResourceVersion(json({}), 'patch', 'application/merge-patch+json', ''),
      undefined,
    )
  })
})
