// Refusals are cheap to keep (issue 18 item 12): bounded fields, per-source and global record
// budgets per window with counted summaries past them, and a per-source 429.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { boundRefusal, RefusalGovernor, sourceKey } from '../../../src/audit/index.ts'
import { record } from './records.ts'

const opts = {
  windowSeconds: 10,
  recordsPerSource: 3,
  maxRecordsPerWindow: 5,
  limitPerSource: 8,
  maxFieldChars: 512,
}

const refusal = (address: string, target = '/api/v1/pods') =>
  record(1, {
    identity: null,
    source: { address, userAgent: 'curl' },
    request: { ...record(1).request!, target },
    decision: null,
    principal: null,
    response: { code: 401, requestBytes: 0, responseBytes: 0 },
    error: { code: 'GW_AUTHN_MISSING_CREDENTIALS', message: 'no credentials' },
  })

describe('refusal records', () => {
  it('bounds targets and headers with a hash of anything longer', () => {
    const long = '/api/v1/namespaces/' + 'a'.repeat(8192)
    const r = boundRefusal(
      {
        ...refusal('10.0.0.1', long),
        source: { address: '10.0.0.1', userAgent: 'u'.repeat(9000) },
      },
      512,
    )
    assert.ok(r.request!.target.length <= 512)
    assert.match(r.request!.target, /…sha256:[0-9a-f]{64}$/)
    assert.ok(r.source.userAgent!.length <= 512)
    assert.equal(boundRefusal(refusal('10.0.0.1'), 512).request!.target, '/api/v1/pods')
  })

  it('records the first refusals of a source, then counts them into one summary', () => {
    let now = 0
    const g = new RefusalGovernor(opts, () => now)
    const kept = Array.from({ length: 7 }, () => g.admit(refusal('10.0.0.1'))).filter(Boolean)
    assert.equal(kept.length, 3)
    assert.deepEqual(g.takeSummaries(), [], 'summaries come when the window ends')
    now = 10_000
    const [summary, ...rest] = g.takeSummaries()
    assert.equal(rest.length, 0)
    assert.equal(summary!.refusalSummary!.refusals, 4)
    assert.deepEqual(summary!.refusalSummary!.byStatus, { '401': 4 })
    assert.equal(summary!.decision!.rule, 'builtin:refusal-summary')
    assert.equal(g.admit(refusal('10.0.0.1'))?.source.address, '10.0.0.1', 'a new window')
  })

  it('caps records across sources per window', () => {
    const g = new RefusalGovernor(opts, () => 0)
    const kept = Array.from({ length: 20 }, (_, i) => g.admit(refusal(`10.0.1.${i}`))).filter(
      Boolean,
    )
    assert.equal(kept.length, 5)
  })

  it('answers 429 to a source past its limit until the window ends', () => {
    let now = 0
    const g = new RefusalGovernor(opts, () => now)
    for (let i = 0; i < 8; i++) {
      assert.equal(g.retryAfter('10.0.0.9'), undefined)
      g.admit(refusal('10.0.0.9'))
    }
    now = 2500
    assert.equal(g.retryAfter('10.0.0.9'), 8)
    assert.equal(g.retryAfter('10.0.0.10'), undefined, 'other sources are not limited')
    now = 10_000
    assert.equal(g.retryAfter('10.0.0.9'), undefined)
  })

  it('counts IPv6 sources by /64 and IPv4-mapped addresses as IPv4', () => {
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
    assert.equal(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64')
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64')
    assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3')
    assert.equal(sourceKey('10.1.2.3'), '10.1.2.3')
  })
})

describe('the largest refusal record', () => {
  it('stays under 16 KiB of JSON whatever the caller sends (docs/audit.md worst case)', () => {
    const huge = 'z'.repeat(100_000)
    const r = boundRefusal(
      {
        ...record(1),
        identity: {
          name: huge,
          groups: Array.from({ length: 1000 }, () => huge),
          method: 'oidc',
          issuer: 'https://issuer.example',
          subject: huge,
          claims: Object.fromEntries(
            Array.from({ length: 22 }, (_, i) => [`claim${i}`, { nested: huge }]),
          ),
        },
        source: {
          address: huge,
          userAgent: huge,
          kubectlCommand: huge,
          kubectlSession: huge,
        },
        request: {
          method: huge,
          target: huge,
          isResourceRequest: true,
          verb: huge,
          apiGroup: huge,
          apiVersion: huge,
          resource: huge,
          subresource: huge,
          namespace: huge,
          name: huge,
        },
        decision: { action: 'deny', rule: 'r', message: huge, auditLevel: 'metadata' },
        error: { code: 'GW_POLICY_DENIED', message: huge },
      },
      512,
    )
    const bytes = Buffer.byteLength(JSON.stringify(r))
    assert.ok(bytes < 16 * 1024, `${bytes} bytes`)
  })
})

describe('refusal sources', () => {
  it('counts an authenticated caller under its identity, not its address', () => {
    const g = new RefusalGovernor(opts, () => 0)
    const denied = (name: string) =>
      record(1, {
        source: { address: '10.9.9.9' },
        response: { code: 403, requestBytes: 0, responseBytes: 0 },
        error: { code: 'GW_POLICY_DENIED', message: 'denied' },
        identity: { name, groups: [], method: 'oidc', claims: {} },
      })
    for (let i = 0; i < 10; i++) g.admit(denied('github:a/b'))
    assert.equal(g.retryAfter('10.9.9.9'), undefined, 'the shared address is not limited')
    assert.ok(g.admit(denied('github:c/d')), 'another identity has its own budget')
  })

  it('always records a held request whole (its approval trail)', () => {
    const g = new RefusalGovernor({ ...opts, recordsPerSource: 0, maxRecordsPerWindow: 0 }, () => 0)
    const held = {
      ...refusal('10.0.0.1', '/x'.repeat(2000)),
      approval: { id: 'a1', event: 'requested' },
    } as unknown as Parameters<RefusalGovernor['admit']>[0]
    assert.equal(g.admit(held), held)
    assert.equal(g.admit(refusal('10.0.0.1')), undefined)
  })
})
