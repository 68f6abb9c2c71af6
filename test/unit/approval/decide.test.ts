// Deciding on an approval: separation of duties, machine identities, approver subjects, one vote
// per approver, quorum, break-glass, denial comments.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  decideOn,
  isNonHuman,
  machineReason,
  type DecisionInput,
} from '../../../src/approval/decide.ts'
import type { Identity } from '../../../src/authn/index.ts'
import { pendingApproval } from './records.ts'

const NOW = Date.parse('2026-01-02T03:10:00Z')
const IDP = 'https://idp.example'
/** The approvers' login: tokens of the IdP decide through the API. */
const LOGIN = { approverIssuers: [IDP] }
const human = (name: string, groups: string[] = ['sre']): Identity => ({
  name,
  groups,
  method: 'oidc',
  issuer: IDP,
  claims: {},
  extra: {},
})
const input = (
  who: Identity,
  decision: 'approve' | 'deny' = 'approve',
  comment = '',
): DecisionInput => ({
  who,
  decision,
  comment,
  via: 'api',
})
const BREAK_GLASS = [{ group: 'on-call' }]

describe('decideOn', () => {
  it('approves with quorum 1 and opens the reuse window', () => {
    const r = decideOn(pendingApproval(), input(human('human:alice'), 'approve', ' ok '), {
      now: NOW,
      ...LOGIN,
    })
    assert.ok('approval' in r)
    assert.equal(r.approval.state, 'approved')
    assert.equal(r.approval.version, 2)
    assert.equal(r.approval.usableUntil, new Date(NOW + 600_000).toISOString())
    assert.deepEqual(
      r.approval.decisions.map((d) => [d.by, d.comment]),
      [['human:alice', 'ok']],
    )
  })

  it('never lets the requester decide on its own request', () => {
    const r = decideOn(pendingApproval(), input(human('human:bob')), { now: NOW, ...LOGIN })
    assert.ok('error' in r)
    assert.equal(r.error, 'forbidden')
    assert.match(r.message, /separation of duties/)
  })

  it('refuses machine identities even when they match the approver subjects', () => {
    const ci: Identity = {
      ...human('github:octo-org/app'),
      extra: { 'gatehouse.dev/repository': ['octo-org/app'] },
    }
    const sa = human('system:serviceaccount:ops:bot')
    for (const who of [ci, sa]) {
      const r = decideOn(pendingApproval(), input(who), { now: NOW, ...LOGIN })
      assert.ok('error' in r && /non-human/.test(r.message), who.name)
    }
    assert.equal(isNonHuman(human('human:x', ['robots']), [{ group: 'robots' }]), true)
    assert.equal(isNonHuman(human('human:x')), false)
  })

  it('refuses identities outside the approver subjects', () => {
    const r = decideOn(pendingApproval(), input(human('human:eve', ['dev'])), {
      now: NOW,
      ...LOGIN,
    })
    assert.ok('error' in r && r.error === 'forbidden' && /not an approver/.test(r.message))
  })

  it('needs distinct approvers for a quorum, one vote each', () => {
    const a = pendingApproval({ settings: { ...pendingApproval().settings, quorum: 2 } })
    const one = decideOn(a, input(human('human:alice')), { now: NOW, ...LOGIN })
    assert.ok('approval' in one)
    assert.equal(one.approval.state, 'pending')
    const twice = decideOn(one.approval, input(human('human:alice')), { now: NOW, ...LOGIN })
    assert.ok('error' in twice && twice.error === 'conflict')
    const two = decideOn(one.approval, input(human('human:carol')), { now: NOW, ...LOGIN })
    assert.ok('approval' in two)
    assert.equal(two.approval.state, 'approved')
  })

  it('lets a break-glass member approve alone, flagged', () => {
    const a = pendingApproval({ settings: { ...pendingApproval().settings, quorum: 3 } })
    const r = decideOn(a, input(human('human:oncall', ['on-call'])), {
      now: NOW,
      ...LOGIN,
      breakGlass: BREAK_GLASS,
    })
    assert.ok('approval' in r)
    assert.equal(r.approval.state, 'approved')
    assert.equal(r.approval.breakGlass, true)
    assert.equal(r.approval.decisions[0]!.breakGlass, true)
    // without the break-glass configuration the same person is no approver
    assert.ok(
      'error' in decideOn(a, input(human('human:oncall', ['on-call'])), { now: NOW, ...LOGIN }),
    )
  })

  it('denies with a comment, and only with one', () => {
    const none = decideOn(pendingApproval(), input(human('human:alice'), 'deny', '  '), {
      now: NOW,
      ...LOGIN,
    })
    assert.ok('error' in none && none.error === 'invalid')
    const r = decideOn(pendingApproval(), input(human('human:alice'), 'deny', 'freeze'), {
      now: NOW,
      ...LOGIN,
    })
    assert.ok('approval' in r)
    assert.equal(r.approval.state, 'denied')
    assert.equal(r.approval.reason, 'freeze')
  })

  it('decides only on pending approvals', () => {
    for (const state of ['approved', 'denied', 'expired', 'used'] as const) {
      const r = decideOn(pendingApproval({ state }), input(human('human:alice')), {
        now: NOW,
        ...LOGIN,
      })
      assert.ok('error' in r && r.error === 'not-pending', state)
    }
  })

  it('knows a CI job by the claims in its token even when the mapping kept none of them', () => {
    // an issuer configured with plain claimMappings: username from sub, no provenance extras
    const ci: Identity = {
      ...human('ci:deploy-bot'),
      issuer: 'https://ci.example',
      claims: { sub: 'deploy-bot', repository: 'octo-org/app', run_id: '42', workflow: 'deploy' },
    }
    assert.match(machineReason(ci)!, /'repository' claim/)
    const r = decideOn(pendingApproval(), input(ci), {
      now: NOW,
      approverIssuers: ['https://ci.example'],
    })
    assert.ok(
      'error' in r && r.error === 'forbidden' && /non-human/.test(r.message),
      JSON.stringify(r),
    )
    for (const claims of [
      { sub: 'repo:octo-org/app:ref:refs/heads/main' },
      { sub: 'project_path:group/app:ref_type:branch:ref:main' },
      { sub: 'spiffe://example.org/ns/ci/sa/runner' },
      { sub: 'x', 'kubernetes.io': { namespace: 'ci' } },
      { sub: 'x', pipeline_id: '7' },
    ])
      assert.ok(machineReason({ ...human('human:x'), claims }), JSON.stringify(claims))
  })

  it('knows a machine by its issuer: a CI or Kubernetes preset, or GitHub Actions', () => {
    const who = { ...human('human:x'), issuer: 'https://k8s.example' }
    assert.equal(machineReason(who), undefined)
    assert.match(machineReason(who, { machineIssuers: ['https://k8s.example'] })!, /issuer/)
    assert.ok(machineReason({ ...who, issuer: 'https://token.actions.githubusercontent.com' }))
  })

  it("takes approvers only from the approvers' login", () => {
    const other = { ...human('human:alice'), issuer: 'https://other-idp.example' }
    const r = decideOn(pendingApproval(), input(other), { now: NOW, ...LOGIN })
    assert.ok('error' in r && /approvers' identity provider/.test(r.message), JSON.stringify(r))
    const staticToken: Identity = { ...human('human:alice'), method: 'static' }
    delete staticToken.issuer
    assert.ok('error' in decideOn(pendingApproval(), input(staticToken), { now: NOW, ...LOGIN }))
    const allowed = decideOn(pendingApproval(), input(staticToken), {
      now: NOW,
      staticTokenApprovers: true,
    })
    assert.ok('approval' in allowed)
    // the web page's own login qualifies whatever the token configuration says
    const web = decideOn(pendingApproval(), { ...input(other), via: 'web-oidc' }, { now: NOW })
    assert.ok('approval' in web)
  })
})
