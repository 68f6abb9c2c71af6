// Conditions on the stored object: which requests need it fetched (objectNeeds), what a failed
// fetch means for deny, approve and allow rules, and oldObject / request.patch.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { header, identity, policySet } from './helpers.ts'

const WHO = identity('k8s:serviceaccount:ops:bot')

function info(method: string, url: string) {
  const r = parseRequestInfo(method, url)
  assert.ok(r.ok)
  return r.info
}

const set = policySet(`${header}metadata: {name: p}
spec:
  subjects: [{name: '*'}]
  forwarding: {impersonate: {user: deployer}}
  rules:
    - {name: everything, action: allow, verbs: ['*']}
    - name: cap
      action: deny
      verbs: [update]
      apiGroups: [apps]
      resources: [statefulsets]
      when: has(object.spec) && object.spec.replicas > 10
    - name: scale-up
      action: approve
      verbs: [update]
      apiGroups: [apps]
      resources: [deployments]
      when: object.spec.replicas > oldObject.spec.replicas
      approval: {approvers: [{group: ops}]}
    - name: no-patch-ops-on-status
      action: deny
      verbs: [patch]
      resources: [configmaps]
      when: request.patch != null && type(request.patch) == list
`)

const base = (method: string, url: string) => ({
  cluster: 'c',
  info: info(method, url),
  identity: WHO,
})

describe('objectNeeds: only when a rule that applies reads the object', () => {
  test('a patch under a condition on object needs it, with the forwarding that lets it through', () => {
    const n = set.objectNeeds(base('PATCH', '/apis/apps/v1/namespaces/a/statefulsets/db'))
    assert.deepEqual(n, {
      object: true,
      oldObject: false,
      forwarding: { impersonate: { user: 'deployer' } },
    })
    const scale = set.objectNeeds(base('PATCH', '/apis/apps/v1/namespaces/a/statefulsets/db/scale'))
    assert.equal(scale?.object, true)
    const both = set.objectNeeds(base('PUT', '/apis/apps/v1/namespaces/a/deployments/web'))
    assert.deepEqual([both?.object, both?.oldObject], [true, true])
  })

  test('nothing is fetched for requests no such rule applies to, or that nothing could allow', () => {
    assert.equal(set.objectNeeds(base('PATCH', '/api/v1/namespaces/a/pods/web')), undefined)
    assert.equal(set.objectNeeds(base('GET', '/api/v1/namespaces/a/configmaps')), undefined)
    const denyAll = policySet(`${header}metadata: {name: d}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: cap, action: deny, verbs: [update], resources: [configmaps], when: has(object.data)}
`)
    assert.equal(denyAll.objectNeeds(base('PATCH', '/api/v1/namespaces/a/configmaps/x')), undefined)
  })
})

describe('what a failed fetch means', () => {
  const unavailable = () => ({ unavailable: "the API server's dry run answered 403 Forbidden" })
  test('a deny applies, and says why', () => {
    const d = set.evaluate({
      ...base('PATCH', '/apis/apps/v1/namespaces/a/statefulsets/db'),
      object: unavailable,
    })
    assert.equal(d.action, 'deny')
    assert.equal(d.rule, 'cap')
    assert.match(
      d.conditionErrors?.[0] ?? '',
      /p\/cap: the request object is not available: the API server's dry run answered 403/,
    )
  })

  test('an approve refuses instead of asking people to approve what nobody could evaluate', () => {
    const d = set.evaluate({
      ...base('PUT', '/apis/apps/v1/namespaces/a/deployments/web'),
      object: () => ({ value: { spec: { replicas: 3 } } }),
      oldObject: unavailable,
    })
    assert.equal(d.action, 'deny')
    assert.equal(d.rule, 'scale-up')
    assert.equal(d.obligations.approval, undefined)
    assert.match(d.conditionErrors?.[0] ?? '', /the stored object is not available/)
  })

  test('oldObject and object decide an approve; request.patch is the patch as sent', () => {
    const up = set.evaluate({
      ...base('PUT', '/apis/apps/v1/namespaces/a/deployments/web'),
      object: () => ({ value: { spec: { replicas: 5 } } }),
      oldObject: () => ({ value: { spec: { replicas: 3 } } }),
    })
    assert.equal(up.action, 'approve')
    const down = set.evaluate({
      ...base('PUT', '/apis/apps/v1/namespaces/a/deployments/web'),
      object: () => ({ value: { spec: { replicas: 2 } } }),
      oldObject: () => ({ value: { spec: { replicas: 3 } } }),
    })
    assert.equal(down.action, 'allow')
    const ops = set.evaluate({
      ...base('PATCH', '/api/v1/namespaces/a/configmaps/x'),
      patch: [{ op: 'remove', path: '/data' }],
    })
    assert.equal(ops.rule, 'no-patch-ops-on-status')
    const merge = set.evaluate({
      ...base('PATCH', '/api/v1/namespaces/a/configmaps/x'),
      patch: { data: {} },
    })
    assert.equal(merge.action, 'allow')
  })
})
