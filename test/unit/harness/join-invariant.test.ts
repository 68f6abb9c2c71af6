// The end-of-run join invariant's classification, one row per kind of audit event: what joins a
// Gatehouse record that allowed it passes, each harness client passes by its own account, and
// anything else (a smuggled request, a forged Audit-ID, a record that denied) fails, named.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AuditEvent } from '../../harness/audit-log.ts'
import type { JoinRecord } from '../../harness/gatehouse-records.ts'
import {
  checkJoinInvariant,
  DIRECT_CLIENT_USER,
  GATEHOUSE_TOKEN_PROBE_AGENT,
} from '../../harness/join-invariant.ts'

const GH = 'system:serviceaccount:gatehouse-system:gatehouse'
const event = (e: Partial<AuditEvent> & { auditID: string }): AuditEvent => ({
  stage: 'ResponseComplete',
  verb: 'get',
  requestURI: '/api/v1/namespaces/a/configmaps/c',
  user: { username: GH },
  ...e,
})
const record = (id: string, r: Partial<JoinRecord> = {}): JoinRecord => ({
  id,
  decision: 'allow',
  principal: { user: 'github:octo-org/app', groups: [], via: 'impersonation' },
  error: undefined,
  approval: undefined,
  identity: 'github:octo-org/app',
  request: 'GET /x',
  ...r,
})
const impersonating = { username: 'github:octo-org/app' }

test('classes that pass', () => {
  const report = checkJoinInvariant(
    [
      event({ auditID: 'r1', impersonatedUser: impersonating }),
      event({
        auditID: 'r2-dry-run',
        verb: 'create',
        requestURI: '/api/v1/namespaces/a/configmaps?dryRun=All',
        impersonatedUser: impersonating,
      }),
      event({ auditID: 'x1', user: { username: 'harness-admin' } }),
      event({ auditID: 'x2', user: { username: 'system:apiserver' } }),
      event({ auditID: 'x3', user: { username: DIRECT_CLIENT_USER } }),
      event({
        auditID: 'x4',
        verb: 'create',
        objectRef: { apiGroup: 'authentication.k8s.io', resource: 'tokenreviews' },
      }),
      event({
        auditID: 'x5',
        user: { username: 'system:anonymous' },
        requestURI: '/openid/v1/jwks',
      }),
      event({ auditID: 'r3', user: { username: 'system:serviceaccount:apps:deployer' } }),
    ],
    [
      record('r1'),
      record('r2', { decision: 'approve', approval: 'requested', principal: null }),
      record('r3', {
        principal: {
          user: 'system:serviceaccount:apps:deployer',
          groups: [],
          via: 'serviceAccountToken',
        },
      }),
    ],
    new Set(),
  )
  assert.deepEqual(report.violations, [])
  assert.equal(report.events, 8)
})

test("the API server refusing Gatehouse's account an impersonation (nothing ran) passes", () => {
  const refused = { code: 403 }
  const report = checkJoinInvariant(
    [
      // forwarded for an identity Gatehouse's RBAC does not list: the caller saw the 403
      event({ auditID: 'r1', responseStatus: refused }),
      // a test's own attempt with Gatehouse's token, refused
      event({ auditID: 'p1', userAgent: GATEHOUSE_TOKEN_PROBE_AGENT, responseStatus: refused }),
    ],
    [record('r1')],
    new Set([GH]),
  )
  assert.deepEqual(report.violations, [])
})

test("policy pre-flights join their request's record, whatever it decided", () => {
  const report = checkJoinInvariant(
    [
      event({
        auditID: 'p1-policy-dry-run',
        verb: 'patch',
        requestURI: '/apis/apps/v1/namespaces/a/statefulsets/db?dryRun=All',
        impersonatedUser: impersonating,
      }),
      event({
        auditID: 'p1-policy-get',
        requestURI: '/apis/apps/v1/namespaces/a/statefulsets/db',
        impersonatedUser: impersonating,
      }),
    ],
    [record('p1', { decision: 'deny', principal: null })],
    new Set(),
  )
  assert.deepEqual(report.violations, [])
  assert.deepEqual(report.byClass, { 'gatehouse policy dry run': 1, 'gatehouse policy get': 1 })
})

const failures: [string, AuditEvent, JoinRecord[], RegExp][] = [
  [
    'a policy dry run that is no dry run',
    event({
      auditID: 'p2-policy-dry-run',
      verb: 'patch',
      requestURI: '/apis/apps/v1/namespaces/a/statefulsets/db',
      impersonatedUser: impersonating,
    }),
    [record('p2', { decision: 'deny', principal: null })],
    /made a policy dry run, the API server saw a request without dryRun=All/,
  ],
  [
    'a policy get that writes',
    event({ auditID: 'p3-policy-get', verb: 'delete', impersonatedUser: impersonating }),
    [record('p3', { decision: 'deny', principal: null })],
    /made a policy get, the API server saw delete/,
  ],
  [
    'a policy pre-flight as someone else',
    event({
      auditID: 'p4-policy-get',
      impersonatedUser: { username: 'system:serviceaccount:kube-system:admin' },
    }),
    [record('p4', { decision: 'deny', principal: null })],
    /would act as github:octo-org\/app, its pre-flight went as system:serviceaccount:kube-system:admin/,
  ],
  [
    'a smuggled request (anonymous, no record)',
    event({
      auditID: 's1',
      requestURI: '/version?smuggled=1',
      user: { username: 'system:anonymous' },
    }),
    [],
    /get \/version\?smuggled=1 as system:anonymous .* no Gatehouse record joins it/,
  ],
  [
    'a forged Audit-ID of a real record, without Gatehouse impersonation',
    event({ auditID: 'r1', user: { username: 'system:anonymous' } }),
    [record('r1')],
    /the API server saw no impersonation/,
  ],
  [
    'a record that denied',
    event({ auditID: 'r1', impersonatedUser: impersonating }),
    [record('r1', { decision: 'deny', error: 'GW_POLICY_DENIED' })],
    /did not allow it \(decision deny, GW_POLICY_DENIED\)/,
  ],
  [
    'a held request forwarded without its approval',
    event({ auditID: 'r1', impersonatedUser: impersonating }),
    [record('r1', { decision: 'approve', approval: 'denied' })],
    /did not allow it/,
  ],
  [
    'a dry-run that is not one',
    event({ auditID: 'r2-dry-run', verb: 'create', impersonatedUser: impersonating }),
    [record('r2', { decision: 'approve', principal: null })],
    /without dryRun=All/,
  ],
  [
    'impersonation nobody recorded',
    event({ auditID: 'z', impersonatedUser: { username: 'admin' } }),
    [],
    /impersonation without a Gatehouse record/,
  ],
  [
    'Gatehouse acting as the harness admin',
    event({ auditID: 'r1', user: { username: 'harness-admin' }, impersonatedUser: impersonating }),
    [record('r1')],
    /Gatehouse used the harness admin credential/,
  ],
  [
    'a refused request under a real record, by someone other than Gatehouse',
    event({ auditID: 'r1', user: { username: 'system:anonymous' }, responseStatus: { code: 403 } }),
    [record('r1')],
    /the API server saw no impersonation/,
  ],
  [
    'a token probe the API server did not refuse',
    event({ auditID: 'p2', userAgent: GATEHOUSE_TOKEN_PROBE_AGENT, responseStatus: { code: 200 } }),
    [],
    /no Gatehouse record joins it/,
  ],
  [
    "Gatehouse's account outside its own calls",
    event({ auditID: 'q', requestURI: '/api/v1/secrets' }),
    [],
    /no Gatehouse record joins it/,
  ],
]
for (const [name, e, records, reason] of failures) {
  test(`fails: ${name}`, () => {
    const report = checkJoinInvariant([e], records, new Set([GH]))
    assert.equal(report.violations.length, 1, JSON.stringify(report))
    assert.match(report.violations[0]!, reason)
  })
}
