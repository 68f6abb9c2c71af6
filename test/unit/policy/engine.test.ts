// The policy engine: subject and rule matching, CEL conditions, precedence, shadow mode.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { CI, decide, header, identity, policySet } from './helpers.ts'

const deployer = `${header}metadata: {name: ci-deployer}
spec:
  subjects:
    - issuer: https://token.actions.githubusercontent.com
      claims: {repository: octo-org/app, ref: refs/heads/main}
  rules:
    - name: deploy-staging
      action: allow
      verbs: [get, list, watch, create, update, patch, delete]
      apiGroups: ['', apps]
      resources: [deployments, services, configmaps, pods, pods/log]
      namespaces: [staging]
`

describe('policy matching', () => {
  const set = policySet(deployer)

  it('allows what the rule names and says which rule decided', () => {
    const d = decide(set, CI, 'PATCH', '/apis/apps/v1/namespaces/staging/deployments/web')
    assert.equal(d.action, 'allow')
    assert.equal(d.policy, 'ci-deployer')
    assert.equal(d.rule, 'deploy-staging')
  })

  it('denies by default outside the rule: other namespace, resource, verb, group', () => {
    for (const [m, u] of [
      ['GET', '/apis/apps/v1/namespaces/prod/deployments/web'],
      ['GET', '/api/v1/namespaces/staging/secrets/db'],
      ['DELETE', '/api/v1/namespaces/staging/pods'],
      ['GET', '/apis/batch/v1/namespaces/staging/jobs'],
      ['GET', '/api/v1/pods'],
      ['POST', '/api/v1/namespaces/staging/pods/web/exec?command=sh'],
    ] as const) {
      const d = decide(set, CI, m, u)
      assert.equal(d.action, 'deny', `${m} ${u}`)
      assert.equal(d.rule, 'builtin:default-deny', `${m} ${u}`)
    }
  })

  it('matches subresources only when named (pods does not cover pods/exec)', () => {
    assert.equal(decide(set, CI, 'GET', '/api/v1/namespaces/staging/pods/web/log').action, 'allow')
    assert.equal(decide(set, CI, 'GET', '/api/v1/namespaces/staging/pods/web/exec').action, 'deny')
  })

  it('does not match another identity: claims, issuer and name are all checked', () => {
    const fork = { ...CI, claims: { ...CI.claims, repository: 'evil/app' } }
    const branch = { ...CI, claims: { ...CI.claims, ref: 'refs/heads/feature' } }
    const otherIssuer = { ...CI, issuer: 'https://gitlab.example.com' }
    for (const who of [fork, branch, otherIssuer])
      assert.equal(decide(set, who, 'GET', '/api/v1/namespaces/staging/pods').action, 'deny')
  })

  it('supports globs on names, namespaces, groups and claims, and wildcard resources', () => {
    const s = policySet(`${header}metadata: {name: globs}
spec:
  subjects: [{group: 'github:octo-*'}]
  rules:
    - {name: r, action: allow, verbs: [get], resources: ['*/scale', 'configmaps'], namespaces: ['team-*'], names: ['web-?']}
`)
    const who = identity('x', { groups: ['github:octo-org'] })
    assert.equal(
      decide(s, who, 'GET', '/apis/apps/v1/namespaces/team-a/deployments/web-1/scale').action,
      'allow',
    )
    assert.equal(
      decide(s, who, 'GET', '/api/v1/namespaces/team-a/configmaps/web-2').action,
      'allow',
    )
    assert.equal(
      decide(s, who, 'GET', '/api/v1/namespaces/team-a/configmaps/web-10').action,
      'deny',
    )
    assert.equal(decide(s, who, 'GET', '/api/v1/namespaces/other/configmaps/web-1').action, 'deny')
    // names given: a request without a name (list) does not match, as in RBAC resourceNames
    assert.equal(decide(s, who, 'GET', '/api/v1/namespaces/team-a/configmaps').action, 'deny')
    assert.equal(
      decide(
        s,
        identity('y', { groups: ['gitlab:octo'] }),
        'GET',
        '/api/v1/namespaces/team-a/configmaps/web-1',
      ).action,
      'deny',
    )
  })

  it('matches non-resource URLs only with nonResourceURLs rules', () => {
    const s = policySet(`${header}metadata: {name: nr}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: health, action: allow, verbs: [get], nonResourceURLs: ['/healthz', '/livez*']}
    - {name: pods, action: allow, verbs: [get], resources: [pods]}
`)
    const who = identity('a')
    assert.equal(decide(s, who, 'GET', '/healthz').rule, 'health')
    assert.equal(decide(s, who, 'GET', '/livez/ping').rule, 'health')
    assert.equal(decide(s, who, 'GET', '/metrics').action, 'deny')
    assert.equal(decide(s, who, 'GET', '/api/v1/namespaces/a/pods/x').rule, 'pods')
  })

  it('exec, attach and port-forward are the create verb whatever the HTTP method', () => {
    const s = policySet(`${header}metadata: {name: exec}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: no-exec, action: deny, verbs: [create], resources: [pods/exec, pods/attach]}
    - {name: rest, action: allow, verbs: ['*']}
`)
    for (const m of ['GET', 'POST'])
      assert.equal(
        decide(s, identity('bot'), m, '/api/v1/namespaces/a/pods/p/exec?command=sh').rule,
        'no-exec',
      )
    assert.equal(
      decide(s, identity('bot'), 'GET', '/api/v1/namespaces/a/pods/p/attach').rule,
      'no-exec',
    )
    assert.equal(decide(s, identity('bot'), 'GET', '/api/v1/namespaces/a/pods/p/log').rule, 'rest')
  })

  it('restricts rules to clusters', () => {
    const s = policySet(`${header}metadata: {name: c}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: staging-only, action: allow, verbs: [get], clusters: ['staging-*']}
`)
    const url = '/api/v1/namespaces/a/pods/p'
    assert.equal(decide(s, identity('a'), 'GET', url, { cluster: 'staging-eu' }).action, 'allow')
    assert.equal(decide(s, identity('a'), 'GET', url, { cluster: 'prod' }).action, 'deny')
  })
})

describe('precedence', () => {
  const set = policySet(`${header}metadata: {name: a-allow-all}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: all, action: allow, verbs: ['*']}
---
${header}metadata: {name: b-protect}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: no-delete-prod, action: deny, verbs: [delete], resources: [namespaces], names: [prod, kube-system], message: production namespaces are never deleted through Gatehouse}
`)

  it('deny wins over allow regardless of policy order, with its message', () => {
    const d = decide(set, CI, 'DELETE', '/api/v1/namespaces/prod')
    assert.equal(d.action, 'deny')
    assert.equal(d.policy, 'b-protect')
    assert.equal(d.rule, 'no-delete-prod')
    assert.match(d.message ?? '', /never deleted/)
    assert.equal(decide(set, CI, 'DELETE', '/api/v1/namespaces/dev').action, 'allow')
  })

  it('the first deny in policy-name then rule order is the one named', () => {
    const s = policySet(`${header}metadata: {name: z}
spec:
  subjects: [{name: '*'}]
  rules: [{name: z1, action: deny, verbs: [get]}]
---
${header}metadata: {name: m}
spec:
  subjects: [{name: '*'}]
  rules: [{name: m1, action: allow, verbs: [get]}, {name: m2, action: deny, verbs: [get]}]
`)
    const d = decide(s, CI, 'GET', '/api/v1/namespaces/a/pods/p')
    assert.deepEqual([d.policy, d.rule], ['m', 'm2'])
  })

  it('carries obligations from the deciding allow rule: audit level and forwarding', () => {
    const s = policySet(`${header}metadata: {name: backup}
spec:
  subjects: [{name: 'backup'}]
  forwarding: {serviceAccount: {namespace: backup, name: reader}}
  audit: request
  rules:
    - {name: read, action: allow, verbs: [get, list]}
    - {name: write, action: allow, verbs: [create], audit: requestResponse}
`)
    const read = decide(s, identity('backup'), 'GET', '/api/v1/pods')
    assert.equal(read.obligations.audit, 'request')
    assert.deepEqual(read.obligations.forwarding, {
      serviceAccount: { namespace: 'backup', name: 'reader' },
    })
    assert.equal(
      decide(s, identity('backup'), 'POST', '/api/v1/namespaces/a/configmaps').obligations.audit,
      'requestResponse',
    )
  })
})

describe('CEL conditions', () => {
  const set = policySet(`${header}metadata: {name: cel}
spec:
  subjects: [{name: '*'}]
  rules:
    - name: no-big-scale
      action: deny
      verbs: [create, update, patch]
      resources: [deployments, statefulsets]
      when: 'has(object.spec) && has(object.spec.replicas) && object.spec.replicas > 10'
      message: more than 10 replicas needs a human
    - name: team-label-required
      action: deny
      verbs: [create]
      resources: [deployments]
      when: '!(has(object.metadata.labels) && "team" in object.metadata.labels)'
    - name: all-namespaces-secrets
      action: deny
      verbs: [list, watch]
      resources: [secrets]
      when: 'request.namespace == ""'
    - name: main-branch-only
      action: allow
      verbs: ['*']
      when: 'identity.claims.ref == "refs/heads/main"'
`)
  const deploy = (replicas: number, labels: Record<string, string> = { team: 'a' }): unknown => ({
    metadata: { name: 'web', labels },
    spec: { replicas },
  })

  it('reads the request object of writes', () => {
    const url = '/apis/apps/v1/namespaces/a/deployments'
    assert.equal(decide(set, CI, 'POST', url, { object: deploy(3) }).action, 'allow')
    const big = decide(set, CI, 'POST', url, { object: deploy(12) })
    assert.equal(big.rule, 'no-big-scale')
    assert.match(big.message ?? '', /needs a human/)
    assert.equal(
      decide(set, CI, 'POST', url, { object: deploy(3, {}) }).rule,
      'team-label-required',
    )
  })

  it('reads request attributes and identity claims', () => {
    assert.equal(decide(set, CI, 'GET', '/api/v1/secrets').rule, 'all-namespaces-secrets')
    assert.equal(decide(set, CI, 'GET', '/api/v1/namespaces/a/secrets').action, 'allow')
    const feature = { ...CI, claims: { ...CI.claims, ref: 'refs/heads/feature' } }
    assert.equal(decide(set, feature, 'GET', '/api/v1/namespaces/a/pods').action, 'deny')
  })

  it('fails closed: a deny whose condition errors applies, an allow whose condition errors does not', () => {
    const s = policySet(`${header}metadata: {name: err}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: deny-big, action: deny, verbs: [create], when: 'object.spec.replicas > 10'}
    - {name: allow-small, action: allow, verbs: [create, get], when: 'object.spec.replicas <= 10'}
`)
    // No spec at all: both conditions fail to evaluate.
    const d = decide(s, CI, 'POST', '/api/v1/namespaces/a/configmaps', { object: { data: {} } })
    assert.equal(d.rule, 'deny-big')
    assert.equal(d.conditionErrors?.length, 1)
    // A read has no object (null): the allow's condition errors, so nothing allows.
    assert.equal(decide(s, CI, 'GET', '/api/v1/namespaces/a/pods').rule, 'builtin:default-deny')
  })

  it('a body Gatehouse cannot read (protobuf) makes conditions on object fail closed, with the reason', () => {
    const s = policySet(`${header}metadata: {name: pb}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: deny-big, action: deny, verbs: [create], when: 'object.spec.replicas > 10'}
    - {name: allow-labelled, action: allow, verbs: [create], when: 'request.namespace == "a" && has(object.metadata.labels)'}
    - {name: allow-b, action: allow, verbs: [create], namespaces: [b], when: 'request.namespace == "b"'}
`)
    const r = parseRequestInfo('POST', '/apis/apps/v1/namespaces/a/deployments')
    assert.ok(r.ok)
    const d = s.evaluate({
      cluster: 'c',
      info: r.info,
      identity: CI,
      object: () => ({ unavailable: 'the body is application/vnd.kubernetes.protobuf' }),
    })
    assert.equal(d.rule, 'deny-big')
    assert.match(
      d.conditionErrors?.join() ?? '',
      /deny-big: the request object is not available: the body is application\/vnd\.kubernetes\.protobuf/,
    )
    // conditions that do not read the object are unaffected
    const rb = parseRequestInfo('POST', '/apis/apps/v1/namespaces/b/deployments')
    assert.ok(rb.ok)
    const s2 = policySet(`${header}metadata: {name: pb}
spec:
  subjects: [{name: '*'}]
  rules: [{name: allow-b, action: allow, verbs: [create], when: 'request.namespace == "b"'}]
`)
    assert.equal(
      s2.evaluate({
        cluster: 'c',
        info: rb.info,
        identity: CI,
        object: () => ({ unavailable: 'protobuf' }),
      }).action,
      'allow',
    )
  })

  it('rejects invalid CEL at load time with the file, policy and rule', () => {
    assert.throws(
      () =>
        policySet(`${header}metadata: {name: bad}
spec:
  subjects: [{name: '*'}]
  rules: [{name: r, action: deny, verbs: [get], when: 'objekt.spec > 1'}]
`),
      /test\.yaml: policy 'bad': spec\.rules\[0\]\.when: invalid CEL/,
    )
    assert.throws(
      () =>
        policySet(`${header}metadata: {name: bad}
spec:
  subjects: [{name: '*'}]
  rules: [{name: r, action: deny, verbs: [get], when: '"yes"'}]
`),
      /must be a bool/,
    )
  })
})

describe('shadow mode', () => {
  const set = policySet(`${header}metadata: {name: base}
spec:
  subjects: [{name: '*'}]
  rules: [{name: all, action: allow, verbs: ['*']}]
---
${header}metadata: {name: new-ban}
spec:
  mode: shadow
  subjects: [{name: '*'}]
  rules: [{name: no-secrets, action: deny, verbs: [get, list], resources: [secrets]}]
---
${header}metadata: {name: new-grant}
spec:
  mode: shadow
  subjects: [{name: 'intern'}]
  rules: [{name: grant, action: allow, verbs: ['*']}]
`)

  it('a shadow deny does not block, and the decision says what it would have done', () => {
    const d = decide(set, CI, 'GET', '/api/v1/namespaces/a/secrets')
    assert.equal(d.action, 'allow')
    assert.equal(d.rule, 'all')
    assert.deepEqual(d.shadow, { action: 'deny', policy: 'new-ban', rule: 'no-secrets' })
  })

  it('a shadow allow never grants access', () => {
    const onlyShadow = policySet(`${header}metadata: {name: new-grant}
spec:
  mode: shadow
  subjects: [{name: 'intern'}]
  rules: [{name: grant, action: allow, verbs: ['*']}]
`)
    const d = decide(onlyShadow, identity('intern'), 'GET', '/api/v1/pods')
    assert.equal(d.action, 'deny')
    assert.equal(d.rule, 'builtin:default-deny')
    assert.deepEqual(d.shadow, { action: 'allow', policy: 'new-grant', rule: 'grant' })
  })

  it('no shadow note when shadow policies agree', () => {
    assert.equal(decide(set, CI, 'GET', '/api/v1/namespaces/a/pods').shadow, undefined)
  })
})

describe('index', () => {
  it('decides the same with 1,000 rules as a linear scan would, using only candidates', () => {
    const rules = Array.from(
      { length: 1000 },
      (_, i) =>
        `    - {name: r${i}, action: allow, verbs: [get], resources: [res${i}], namespaces: [ns-${i % 10}]}`,
    )
    const s = policySet(`${header}metadata: {name: many}
spec:
  subjects: [{name: '*'}]
  rules:
${rules.join('\n')}
    - {name: deny-777, action: deny, verbs: ['*'], resources: [res777]}
`)
    assert.equal(s.ruleCount, 1001)
    assert.equal(decide(s, CI, 'GET', '/api/v1/namespaces/ns-3/res123/x').rule, 'r123')
    assert.equal(decide(s, CI, 'GET', '/api/v1/namespaces/ns-4/res123/x').action, 'deny')
    assert.equal(decide(s, CI, 'GET', '/api/v1/namespaces/ns-7/res777/x').rule, 'deny-777')
    assert.equal(decide(s, CI, 'POST', '/api/v1/namespaces/ns-3/res123').action, 'deny')
  })
})
