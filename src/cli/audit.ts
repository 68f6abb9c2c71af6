// `gatehouse audit list|show`: read the audit store named by gatehouse.yaml, with the same
// filters as the admin API.
import { auditStoreFromConfig, type AuditRecord } from '../audit/index.ts'
import type { AuditQuery } from '../audit/index.ts'
import type { GatewayConfig } from '../config/index.ts'

export async function listRecords(config: GatewayConfig, q: AuditQuery): Promise<AuditRecord[]> {
  const store = auditStoreFromConfig(config.audit, config.dataDir, { readonly: true })
  try {
    return await store.query(q)
  } finally {
    await store.close()
  }
}

export async function showRecord(
  config: GatewayConfig,
  id: string,
): Promise<AuditRecord | undefined> {
  const store = auditStoreFromConfig(config.audit, config.dataDir, { readonly: true })
  try {
    return await store.get(id)
  } finally {
    await store.close()
  }
}

function what(r: AuditRecord): string {
  const q = r.request
  if (!q) return '-'
  if (!q.isResourceRequest) return q.target.split('?')[0]!
  const res =
    (q.apiGroup ? `${q.resource}.${q.apiGroup}` : q.resource) +
    (q.subresource ? `/${q.subresource}` : '')
  const where = q.namespace && q.name ? `${q.namespace}/${q.name}` : q.name || q.namespace || '*'
  return `${res} ${where}`
}

export function formatTable(records: readonly AuditRecord[]): string {
  const rows = records.map((r) => [
    r.time,
    r.identity?.name ?? '(unauthenticated)',
    r.cluster ?? '-',
    r.request?.verb ?? '-',
    what(r),
    r.decision?.action ?? (r.error ? 'refused' : '-'),
    r.decision
      ? r.decision.policy
        ? `${r.decision.policy}/${r.decision.rule}`
        : r.decision.rule
      : (r.error?.code ?? '-'),
    String(r.response.code),
    r.id,
  ])
  const header = [
    'TIME',
    'IDENTITY',
    'CLUSTER',
    'VERB',
    'RESOURCE',
    'DECISION',
    'RULE',
    'CODE',
    'ID',
  ]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  return (
    [header, ...rows]
      .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
      .join('\n') + '\n'
  )
}
