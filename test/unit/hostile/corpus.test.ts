// The hostile-input corpus as data (test/hostile/corpus/*.yaml), checked without a cluster: it
// loads, has its 500 cases over every category, and every case can be written out (its
// placeholders exist, its raw bytes are bytes). The e2e runner sends them:
// test/e2e/gateway/hostile-corpus.test.ts.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoRoot } from '../../harness/binaries.ts'
import { CATEGORIES, caseProblem, instantiate, loadCorpus } from '../../hostile/corpus.ts'
import { bytesOf, expandText, httpBytes, type Placeholders } from '../../hostile/expand.ts'

const corpus = loadCorpus(join(repoRoot, 'test', 'hostile', 'corpus'))
const p: Placeholders = {
  token: 'eyJ.token.sig',
  ciToken: 'eyJ.ci.sig',
  ciTokenB64: 'ZXlKLmNpLnNpZw',
  ns: 'hostile-x',
  name: 'case-name',
  host: '127.0.0.1:1',
  smuggle: 'hostile-smuggled-x',
}

test('the corpus holds at least 500 cases covering every category', () => {
  assert.ok(corpus.length >= 500, `${corpus.length} cases`)
  for (const c of CATEGORIES)
    assert.ok(corpus.filter((x) => x.category === c).length >= 20, `few ${c} cases`)
})

test('every case can be written out: known placeholders, one byte per character in raw requests', () => {
  for (const c of corpus) {
    const r = c.request
    if (r.raw !== undefined) bytesOf(expandText(r.raw, p))
    if (r.http) httpBytes(r.http, p, true)
    for (const step of r.then ?? []) if ('raw' in step) bytesOf(expandText(step.raw, p))
    if (r.h2) expandText(JSON.stringify(r.h2), p)
    for (const path of [c.expect.absent, c.expect.unlabelled]) if (path) expandText(path, p)
  }
})

test('every case is well formed: one request kind, a status for a response, none for a closed connection or a reset stream', () => {
  for (const c of corpus) assert.equal(caseProblem(c), undefined, c.id)
})

test('a family value names a default or an item value; a missing one is an error, not a silent ${var}', () => {
  assert.deepEqual(instantiate({ a: '${x}', b: 'p-${x}-${y}' }, { x: 1, y: 'z' }, 'here'), {
    a: 1,
    b: 'p-1-z',
  })
  assert.throws(() => instantiate({ a: '${nope}' }, {}, 'here'), /nope\} has no value/)
})

test('placeholders expand; a repeat may hold a named one', () => {
  assert.equal(
    expandText('{{ns}}/{{repeat:3:a{{token}};}}', p),
    'hostile-x/aeyJ.token.sig;aeyJ.token.sig;aeyJ.token.sig;',
  )
  assert.throws(() => expandText('{{nope}}', p), /unknown placeholder/)
  assert.throws(() => bytesOf('é€'), /beyond one byte/)
})
