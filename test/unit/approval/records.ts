// A pending approval record for unit tests.
import type { ApprovalRecord } from '../../../src/approval/record.ts'

export function pendingApproval(more: Partial<ApprovalRecord> = {}): ApprovalRecord {
  const now = Date.parse('2026-01-02T03:04:05Z')
  return {
    id: '00000000-0000-4000-8000-000000000001',
    state: 'pending',
    binding: 'b'.repeat(64),
    requestId: 'req-1',
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3600_000).toISOString(),
    cluster: 'prod',
    requester: { name: 'human:bob', groups: ['sre'], method: 'oidc', claims: {}, extra: {} },
    request: {
      method: 'POST',
      target: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      verb: 'create',
      apiGroup: 'rbac.authorization.k8s.io',
      apiVersion: 'v1',
      resource: 'clusterrolebindings',
      subresource: '',
      namespace: '',
      name: '',
      bodySha256: 'a'.repeat(64),
      summary: 'create clusterrolebindings.rbac.authorization.k8s.io',
    },
    rule: { policy: 'p', rule: 'r' },
    settings: {
      approvers: [{ group: 'sre' }],
      quorum: 1,
      wait: 'hold',
      reuseWindowSeconds: 600,
      reuseUses: 1,
    },
    decisions: [],
    uses: [],
    version: 1,
    ...more,
  }
}
