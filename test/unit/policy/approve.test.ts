// The approve action: schema (approval settings required with it, refused without), precedence
// (deny over approve over allow), obligations (approval settings, forwarding kept), shadow mode.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parsePolicyText } from '../../../src/policy/index.ts'
import { CI, decide, header, policySet } from './helpers.ts'

const policy = (rules: string, mode = 'enforce'): string => `${header}metadata: {name: p-${mode}}
spec:
  mode: ${mode}
  subjects: [{name: '*'}]
  forwarding: {impersonate: {user: ci-mapped}}
  rules:
${rules}`

const approveCrb = `    - name: crb
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [clusterrolebindings]
      approval:
        approvers: [{group: sre}]
        quorum: 2
        expiresIn: 30m
        wait: retry
        reuse: {window: 10m, uses: 3}
`
const allowAll = `    - name: all
      action: allow
      verbs: ['*']
`
const CRB = '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings'

describe('policy action approve', () => {
  it('decides approve over allow, with the approval settings and the forwarding as obligations', () => {
    const d = decide(policySet(policy(allowAll + approveCrb)), CI, 'POST', CRB)
    assert.equal(d.action, 'approve')
    assert.equal(d.rule, 'crb')
    assert.deepEqual(d.obligations.approval, {
      approvers: [{ group: 'sre' }],
      quorum: 2,
      expiresIn: 1800,
      wait: 'retry',
      reuse: { window: 600, uses: 3 },
    })
    assert.deepEqual(d.obligations.forwarding, { impersonate: { user: 'ci-mapped' } })
    assert.equal(decide(policySet(policy(allowAll + approveCrb)), CI, 'GET', CRB).action, 'allow')
  })

  it('lets a deny win over approve', () => {
    const deny = `    - name: no-crb
      action: deny
      verbs: [create]
      resources: [clusterrolebindings]
`
    const d = decide(policySet(policy(approveCrb + deny)), CI, 'POST', CRB)
    assert.equal(d.action, 'deny')
    assert.equal(d.rule, 'no-crb')
  })

  it('defaults: quorum 1, an hour, hold, one use', () => {
    const d = decide(
      policySet(
        policy(`    - name: crb
      action: approve
      verbs: [create]
      approval: {approvers: [{name: 'human:*'}]}
`),
      ),
      CI,
      'POST',
      CRB,
    )
    assert.deepEqual(d.obligations.approval, {
      approvers: [{ name: 'human:*' }],
      quorum: 1,
      expiresIn: 3600,
      wait: 'hold',
    })
  })

  it('in a shadow policy only warns: the enforced allow stands', () => {
    const set = policySet(policy(allowAll, 'enforce') + '---\n' + policy(approveCrb, 'shadow'))
    const d = decide(set, CI, 'POST', CRB)
    assert.equal(d.action, 'allow')
    assert.equal(d.shadow?.action, 'approve')
  })

  it('refuses approve without approval settings, and approval settings on other actions', () => {
    const missing = parsePolicyText(
      policy(`    - name: x
      action: approve
      verbs: [create]
`),
      't.yaml',
    )
    assert.match(missing.problems.join('\n'), /approve rule needs approval/)
    const extra = parsePolicyText(
      policy(`    - name: x
      action: allow
      verbs: [create]
      approval: {approvers: [{group: sre}]}
`),
      't.yaml',
    )
    assert.match(extra.problems.join('\n'), /only for rules with action approve/)
    const bad = parsePolicyText(
      policy(`    - name: x
      action: approve
      verbs: [create]
      approval: {approvers: [], wait: later}
`),
      't.yaml',
    )
    assert.match(bad.problems.join('\n'), /at least one approver/)
    assert.match(bad.problems.join('\n'), /wait/)
  })
})
