// Audit records for store tests.
import type { AuditRecord } from '../../../src/audit/index.ts'

export function record(i: number, more: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: `req-${i}-${Math.random().toString(36).slice(2, 8)}`,
    time: new Date(Date.UTC(2026, 10, 24, 12, 0, 0) + i * 1000).toISOString(),
    durationMs: 1.5,
    cluster: i % 2 ? 'prod' : 'staging',
    identity: {
      name: i % 3 ? 'github:octo-org/app' : 'k8s:serviceaccount:ops:backup',
      groups: ['github:octo-org'],
      method: 'oidc',
      claims: { repository: 'octo-org/app', run_id: String(i) },
    },
    source: { address: '127.0.0.1', userAgent: 'kubectl/v1.32.0' },
    request: {
      method: 'GET',
      target: `/api/v1/namespaces/ns-${i % 4}/pods`,
      isResourceRequest: true,
      verb: i % 5 ? 'list' : 'delete',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: `ns-${i % 4}`,
      name: '',
    },
    decision: { action: i % 5 ? 'allow' : 'deny', policy: 'p', rule: 'r', auditLevel: 'metadata' },
    principal: { user: 'github:octo-org/app', groups: [], via: 'impersonation' },
    response: { code: i % 5 ? 200 : 403, requestBytes: 0, responseBytes: 123 },
    ...more,
  }
}
