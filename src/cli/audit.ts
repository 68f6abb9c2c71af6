// `gatehouse audit list|show`: read the audit store named by gatehouse.yaml, with the same
// filters as the admin API.
import { formatColumns } from './table.ts'
import { auditStoreFromConfig, type AuditRecord } from '../audit/index.ts'
import type { AuditQuery, AuditStore } from '../audit/index.ts'
import type { GatewayConfig } from '../config/index.ts'

/** Runs `fn` on the store named by the configuration, opened read-only, then closes it. */
export async function withStore<T>(
  config: GatewayConfig,
  fn: (store: AuditStore) => Promise<T>,
): Promise<T> {
  const store = auditStoreFromConfig(config.audit, config.dataDir, { readonly: true })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

export function listRecords(config: GatewayConfig, q: AuditQuery): Promise<AuditRecord[]> {
  return withStore(config, (s) => s.query(q))
}

export function showRecord(config: GatewayConfig, id: string): Promise<AuditRecord | undefined> {
  return withStore(config, (s) => s.get(id))
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
  return formatColumns(header, rows)
}
