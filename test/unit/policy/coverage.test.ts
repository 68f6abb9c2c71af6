// Deny and approve rules cover every request that can read or change what they name; allow
// rules stay as narrow as written. One row per rule scope × request shape (docs/policy.md has
// the same table).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { decide, header, identity, policySet } from './helpers.ts'

const WHO = identity('k8s:serviceaccount:ops:bot')

function withDeny(deny: string, allow = `verbs: ['*']`): ReturnType<typeof policySet> {
  return policySet(`${header}metadata: {name: p}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: everything, action: allow, ${allow}}
    - {name: protect, action: deny, ${deny}}
`)
}

type Row = [
  request: string,
  expected: 'deny' | 'allow' | 'filter',
  opts?: { object?: unknown; patchType?: string },
]

function table(name: string, deny: string, rows: Row[]): void {
  describe(name, () => {
    for (const filter of [false, true]) {
      const set = withDeny(deny + (filter ? ', collections: filter' : ''))
      for (const [request, expected, opts] of rows) {
        const want = expected === 'filter' ? (filter ? 'filter' : 'deny') : expected
        test(`${filter ? '[filter] ' : ''}${request} → ${want}`, () => {
          const [method, url] = request.split(' ') as [string, string]
          const d = decide(set, WHO, method, url, opts ?? {})
          if (want === 'filter') {
            assert.equal(d.action, 'allow')
            assert.deepEqual(
              d.obligations.filter?.map((f) => f.rule),
              ['protect'],
            )
          } else {
            assert.equal(d.action, want, `${request}: ${d.action} by ${d.rule}`)
            if (want === 'allow') assert.equal(d.obligations.filter, undefined)
          }
        })
      }
    }
  })
}

table(
  'a namespaced deny covers cluster-wide collections',
  `verbs: [get, list, watch, delete], resources: [secrets], namespaces: [x]`,
  [
    ['GET /api/v1/namespaces/x/secrets/db', 'deny'],
    ['GET /api/v1/namespaces/x/secrets', 'deny'],
    ['GET /api/v1/namespaces/y/secrets', 'allow'],
    ['GET /api/v1/secrets', 'filter'],
    ['GET /api/v1/secrets?watch=true', 'filter'],
    ['GET /api/v1/watch/secrets', 'filter'],
    ['GET /api/v1/secrets?fieldSelector=metadata.namespace%3Dx', 'deny'],
    ['GET /api/v1/secrets?fieldSelector=metadata.namespace%3Dy', 'allow'],
    ['GET /api/v1/secrets?fieldSelector=metadata.namespace!%3Dy', 'filter'],
    ['GET /api/v1/secrets?labelSelector=a%3Db', 'filter'],
    ['DELETE /api/v1/namespaces/x/secrets', 'deny'],
    ['DELETE /api/v1/secrets', 'deny'],
    ['GET /api/v1/nodes', 'allow'],
    ['GET /api/v1/configmaps', 'allow'],
  ],
)

table(
  'a namespaced deny on everything leaves cluster-scoped built-ins alone',
  `verbs: ['*'], namespaces: [x]`,
  [
    ['GET /api/v1/nodes', 'allow'],
    ['GET /apis/rbac.authorization.k8s.io/v1/clusterroles', 'allow'],
    ['GET /apis/example.com/v1/widgets', 'filter'],
    ['GET /api/v1/namespaces', 'filter'],
    ['GET /api/v1/namespaces/x', 'deny'],
    ['GET /api/v1/namespaces?fieldSelector=metadata.name%3Dx', 'deny'],
    ['GET /api/v1/namespaces?fieldSelector=metadata.name%3Dy', 'allow'],
  ],
)

table(
  'a name-scoped deny covers collections and name selectors',
  `verbs: [get, delete], resources: [configmaps], names: [prod]`,
  [
    ['GET /api/v1/namespaces/a/configmaps/prod', 'deny'],
    ['GET /api/v1/namespaces/a/configmaps/dev', 'allow'],
    ['GET /api/v1/namespaces/a/configmaps', 'filter'],
    ['GET /api/v1/namespaces/a/configmaps?watch=1', 'filter'],
    ['GET /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dprod', 'deny'],
    ['GET /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3D%3Dprod', 'deny'],
    ['GET /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Ddev', 'allow'],
    ['GET /api/v1/configmaps', 'filter'],
    ['DELETE /api/v1/namespaces/a/configmaps/prod', 'deny'],
    ['DELETE /api/v1/namespaces/a/configmaps', 'deny'],
    ['DELETE /api/v1/namespaces/a/configmaps?labelSelector=app%3Dweb', 'deny'],
    ['DELETE /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dprod', 'deny'],
    ['DELETE /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Ddev', 'allow'],
    ['POST /api/v1/namespaces/a/configmaps', 'allow', { object: { metadata: { name: 'x' } } }],
  ],
)

table(
  'a deny on writes covers every write spelling and the subresources that change the object',
  `verbs: [update], apiGroups: [apps], resources: [statefulsets], names: [db]`,
  [
    ['PUT /apis/apps/v1/namespaces/a/statefulsets/db', 'deny'],
    ['PATCH /apis/apps/v1/namespaces/a/statefulsets/db', 'deny'],
    ['PATCH /apis/apps/v1/namespaces/a/statefulsets/db/scale', 'deny'],
    ['PUT /apis/apps/v1/namespaces/a/statefulsets/db/scale', 'deny'],
    ['PATCH /apis/apps/v1/namespaces/a/statefulsets/db/status', 'deny'],
    ['GET /apis/apps/v1/namespaces/a/statefulsets/db/scale', 'allow'],
    ['PATCH /apis/apps/v1/namespaces/a/statefulsets/web', 'allow'],
  ],
)

table(
  'a deny on create covers server-side apply and named creates',
  `verbs: [create], resources: [configmaps], names: [prod, 'web-*']`,
  [
    ['POST /api/v1/namespaces/a/configmaps', 'deny', { object: { metadata: { name: 'prod' } } }],
    ['POST /api/v1/namespaces/a/configmaps', 'allow', { object: { metadata: { name: 'dev' } } }],
    [
      'POST /api/v1/namespaces/a/configmaps',
      'allow',
      { object: { metadata: { generateName: 'x-' } } },
    ],
    [
      'POST /api/v1/namespaces/a/configmaps',
      'deny',
      { object: { metadata: { generateName: 'web-' } } },
    ],
    [
      'PATCH /api/v1/namespaces/a/configmaps/prod?fieldManager=k',
      'deny',
      { patchType: 'application/apply-patch+yaml' },
    ],
    [
      'PATCH /api/v1/namespaces/a/configmaps/prod',
      'allow',
      { patchType: 'application/merge-patch+json' },
    ],
    ['PUT /api/v1/namespaces/a/configmaps/prod', 'deny'],
  ],
)

table(
  'a deny on delete covers eviction',
  `verbs: [delete], resources: [pods], namespaces: [prod]`,
  [
    ['POST /api/v1/namespaces/prod/pods/web/eviction', 'deny'],
    ['DELETE /api/v1/namespaces/prod/pods', 'deny'],
    ['DELETE /api/v1/namespaces/dev/pods', 'allow'],
    ['GET /api/v1/namespaces/prod/pods/web/log', 'allow'],
  ],
)

describe('allow rules stay as narrow as written', () => {
  const set = policySet(`${header}metadata: {name: p}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: x-secrets, action: allow, verbs: [get, list, watch], resources: [secrets], namespaces: [x]}
    - {name: prod-cm, action: allow, verbs: [get, list, delete], resources: [configmaps], names: [prod]}
    - {name: deploys, action: allow, verbs: [update], apiGroups: [apps], resources: [deployments]}
`)
  const rows: [string, 'allow' | 'deny'][] = [
    ['GET /api/v1/namespaces/x/secrets', 'allow'],
    ['GET /api/v1/secrets', 'deny'],
    ['GET /api/v1/secrets?fieldSelector=metadata.namespace%3Dx', 'deny'],
    ['GET /api/v1/namespaces/a/configmaps/prod', 'allow'],
    ['GET /api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dprod', 'allow'],
    ['GET /api/v1/namespaces/a/configmaps', 'deny'],
    ['DELETE /api/v1/namespaces/a/configmaps', 'deny'],
    ['PATCH /apis/apps/v1/namespaces/a/deployments/web', 'deny'],
    ['PUT /apis/apps/v1/namespaces/a/deployments/web/scale', 'deny'],
  ]
  for (const [request, want] of rows)
    test(`${request} → ${want}`, () => {
      const [method, url] = request.split(' ') as [string, string]
      assert.equal(decide(set, WHO, method, url).action, want)
    })
})

describe('collections: filter', () => {
  test('the filter names the rule and matches the namespaces and names it covers', () => {
    const set = withDeny(
      `verbs: [get], resources: [secrets], namespaces: [x, 'prod-*'], names: [db], collections: filter`,
    )
    const d = decide(set, WHO, 'GET', '/api/v1/secrets')
    const [f] = d.obligations.filter ?? []
    assert.ok(f?.namespace && f.name)
    assert.deepEqual(
      [f.namespace('prod-1'), f.namespace('y'), f.name('db'), f.name('web')],
      [true, false, true, false],
    )
  })

  test('is refused on allow rules and without namespaces or names', () => {
    assert.throws(
      () => withDeny(`verbs: [get], resources: [secrets], collections: filter`),
      /collections: filter needs namespaces or names/,
    )
    assert.throws(
      () => withDeny(`verbs: [get]`, `verbs: ['*'], namespaces: [x], collections: filter`),
      /collections: is for deny and approve rules/,
    )
  })
})

describe('explanations', () => {
  test('check-config lists what each deny and approve rule covers beyond its spelling', () => {
    const set = withDeny(`verbs: [get, delete], resources: [secrets], namespaces: [x], names: [db]`)
    const [c] = set.coverage()
    assert.equal(c?.rule, 'protect')
    const text = c.covers.join('\n')
    assert.match(text, /also the verbs list, watch, deletecollection/)
    assert.match(text, /subresources that read or change secrets itself/)
    assert.match(text, /lists and watches across all namespaces: refused/)
    assert.match(text, /deletecollection: refused unless a fieldSelector metadata\.name=<other>/)
  })

  test('a decision says why a rule covers a request it does not spell out', () => {
    const set = withDeny(
      `verbs: [update], apiGroups: [apps], resources: [statefulsets], namespaces: [x]`,
    )
    const d = decide(set, WHO, 'PATCH', '/apis/apps/v1/namespaces/x/statefulsets/db/scale')
    assert.equal(d.action, 'deny')
    assert.equal(d.coverage, 'patch statefulsets/scale is a patch of the statefulsets itself')
    const direct = decide(set, WHO, 'PUT', '/apis/apps/v1/namespaces/x/statefulsets/db')
    assert.equal(direct.coverage, undefined)
  })
})
