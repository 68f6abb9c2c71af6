// Property: no spelling of a denied request that the attribute parser accepts escapes the deny.
// Requests denied by the shipped example policies are re-encoded at random (percent-encoding of
// any character, either hex case, trailing slashes, extra query parameters, doubled slashes,
// dot segments, encoded slashes); every variant must either be refused by the parser (so it
// never reaches a policy or the cluster) or parse to the same attributes and be denied.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { loadPolicies, parsePolicyText, PolicySet } from '../../../src/policy/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { CI, header, identity } from './helpers.ts'

const allowAll = parsePolicyText(
  `${header}metadata: {name: allow-everything}
spec:
  subjects: [{name: '*'}]
  rules: [{name: all, action: allow, verbs: ['*']}]
`,
  'allow-all.yaml',
).policies
const set = new PolicySet([...loadPolicies([join(repoRoot, 'examples', 'policies')]), ...allowAll])
const scanner = identity('k8s:serviceaccount:ops:scanner')

/** Denied requests: method, path, query, who, and the rule that must deny them. */
const DENIED = [
  { method: 'DELETE', path: '/api/v1/namespaces/prod', query: '', who: CI, rule: 'never-delete' },
  {
    method: 'DELETE',
    path: '/api/v1/namespaces/kube-system',
    query: '',
    who: scanner,
    rule: 'never-delete',
  },
  { method: 'GET', path: '/api/v1/secrets', query: '', who: CI, rule: 'all-namespaces-secrets' },
  {
    method: 'GET',
    path: '/api/v1/secrets',
    query: 'watch=true',
    who: CI,
    rule: 'all-namespaces-secrets',
  },
  {
    method: 'POST',
    path: '/api/v1/namespaces/apps/pods/web-0/exec',
    query: 'command=sh&stdin=true',
    who: CI,
    rule: 'no-shell',
  },
  {
    method: 'GET',
    path: '/api/v1/namespaces/apps/pods/web-0/attach',
    query: 'stdout=true',
    who: scanner,
    rule: 'no-shell',
  },
  {
    method: 'GET',
    path: '/api/v1/namespaces/apps/secrets/db',
    query: '',
    who: scanner,
    rule: 'no-secrets',
  },
  {
    method: 'GET',
    path: '/api/v1/namespaces/apps/secrets',
    query: 'limit=500',
    who: scanner,
    rule: 'no-secrets',
  },
] as const

const hex = (c: string, upper: boolean): string =>
  [...Buffer.from(c, 'utf8')]
    .map(
      (b) =>
        `%${upper ? b.toString(16).toUpperCase().padStart(2, '0') : b.toString(16).padStart(2, '0')}`,
    )
    .join('')

const encoding = fc.record({
  /** Per character: keep, or percent-encode in upper or lower case. */
  perChar: fc.array(fc.constantFrom('keep', 'keep', 'keep', 'upper', 'lower'), {
    minLength: 80,
    maxLength: 80,
  }),
  trailingSlash: fc.boolean(),
  extraQuery: fc.subarray([
    'pretty=true',
    'timeout=30s',
    'resourceVersion=0',
    'x=%41',
    'fieldManager=kubectl',
    'dryRun=All',
    'allowWatchBookmarks=true',
  ]),
  /** Structural tricks the parser must refuse rather than normalise. */
  trick: fc.constantFrom(
    'none',
    'none',
    'none',
    'double-slash',
    'dot-segment',
    'dot-dot',
    'encoded-slash',
    'semicolon',
  ),
  trickAt: fc.nat(10),
})

type Encoding = typeof encoding extends fc.Arbitrary<infer T> ? T : never

function spell(path: string, query: string, e: Encoding): string {
  const segments = path.split('/').slice(1)
  let i = 0
  let encoded = segments.map((seg) =>
    [...seg]
      .map((c) => {
        const how = e.perChar[i++ % e.perChar.length]
        return how === 'keep' ? c : hex(c, how === 'upper')
      })
      .join(''),
  )
  const at = 1 + (e.trickAt % Math.max(1, encoded.length - 1))
  if (e.trick === 'double-slash') encoded.splice(at, 0, '')
  if (e.trick === 'dot-segment') encoded.splice(at, 0, '.')
  if (e.trick === 'dot-dot') encoded.splice(at, 0, 'x', '..')
  if (e.trick === 'encoded-slash')
    encoded = [encoded.slice(0, at).join('/'), encoded.slice(at).join('%2F')]
  let target = '/' + encoded.join('/') + (e.trailingSlash ? '/' : '')
  const q = [query, ...e.extraQuery].filter(Boolean)
  if (e.trick === 'semicolon') q.push('a=1;watch=false')
  if (q.length) target += `?${q.join('&')}`
  return target
}

describe('deny rules cannot be bypassed by re-encoding', () => {
  for (const d of DENIED) {
    const canonical = parseRequestInfo(d.method, d.query ? `${d.path}?${d.query}` : d.path)
    assert.ok(canonical.ok)
    const expected = set.evaluate({ cluster: 'prod', info: canonical.info, identity: d.who })

    it(`${d.method} ${d.path}${d.query ? `?${d.query}` : ''} stays denied by ${d.rule}`, () => {
      assert.equal(expected.action, 'deny')
      assert.equal(expected.rule, d.rule)
      fc.assert(
        fc.property(encoding, (e) => {
          const target = spell(d.path, d.query, e)
          const parsed = parseRequestInfo(d.method, target)
          if (!parsed.ok) return true // refused before any policy: never forwarded
          const { info } = parsed
          const c = canonical.info
          assert.deepEqual(
            [info.resource, info.subresource, info.namespace, info.name, info.apiGroup],
            [c.resource, c.subresource, c.namespace, c.name, c.apiGroup],
            `${target} parsed differently`,
          )
          const decision = set.evaluate({ cluster: 'prod', info, identity: d.who })
          assert.equal(
            decision.action,
            'deny',
            `${d.method} ${target} was allowed (${decision.rule})`,
          )
          return true
        }),
        { numRuns: 400 },
      )
    })
  }

  it('the generator does produce accepted variants (the property is not vacuous)', () => {
    let accepted = 0
    fc.assert(
      fc.property(encoding, (e) => {
        if (parseRequestInfo('GET', spell('/api/v1/namespaces/apps/secrets/db', '', e)).ok)
          accepted++
        return true
      }),
      { numRuns: 400 },
    )
    assert.ok(accepted > 100, `only ${accepted} of 400 variants were accepted`)
  })
})
