// `gatehouse audit list|show`: read the audit store named by gatehouse.yaml, with the same
// filters as the admin API (shadow-mode outcomes included: --decision shadow-deny).
import { formatColumns } from './table.ts'
import type { AuditQuery, AuditRecord } from '../audit/index.ts'
import { DECISION_FILTERS } from '../audit/query.ts'
import { auditQueryFromParams } from '../admin/server.ts'
import type { GatewayConfig } from '../config/index.ts'
import { storesFromConfig, type Stores } from '../stores.ts'
import { fail, type Command } from './command.ts'
import {
  CONFIG_OPTION,
  configOf,
  LIST_OPTIONS,
  listFilters,
  printJson,
  printList,
} from './common.ts'

/** Runs `fn` on the database named by the configuration, opened read-only, then closes it. */
export async function withStore<T>(
  config: GatewayConfig,
  fn: (stores: Stores) => Promise<T>,
): Promise<T> {
  const store = storesFromConfig(config.audit, config.dataDir, { readonly: true })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

export function listRecords(config: GatewayConfig, q: AuditQuery): Promise<AuditRecord[]> {
  return withStore(config, (s) => s.audit.query(q))
}

export function showRecord(config: GatewayConfig, id: string): Promise<AuditRecord | undefined> {
  return withStore(config, (s) => s.audit.get(id))
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

/** What a shadow-mode policy would have decided: `deny (policy/rule)`, or '-'. */
function shadowOf(r: AuditRecord): string {
  const s = r.decision?.shadow
  if (!s) return '-'
  return `${s.action} (${s.policy ? `${s.policy}/${s.rule}` : s.rule})`
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
    shadowOf(r),
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
    'SHADOW',
    'CODE',
    'ID',
  ]
  return formatColumns(header, rows)
}

const AUDIT_FILTERS = ['identity', 'cluster', 'namespace', 'verb', 'resource', 'decision'] as const

export const auditCommands: Command[] = [
  {
    name: 'audit list',
    summary: 'list audit records, newest first',
    options: {
      ...LIST_OPTIONS,
      verb: { type: 'string', value: 'VERB', help: 'the Kubernetes verb (get, list, create...)' },
      resource: { type: 'string', value: 'R', help: 'the resource (pods, secrets...)' },
      decision: {
        type: 'string',
        value: DECISION_FILTERS.join('|'),
        help: 'the enforced decision, or what a shadow-mode policy would have decided (shadow: any)',
      },
    },
    examples: [
      'gatehouse audit list -c gatehouse.yaml --since 1h --decision deny',
      "gatehouse audit list -c gatehouse.yaml --identity 'github:octo-org/*' --namespace prod -o jsonl",
      'gatehouse audit list -c gatehouse.yaml --decision shadow-deny --since 1d',
    ],
    async run(values) {
      const q = listFilters('gatehouse audit list', values, AUDIT_FILTERS, auditQueryFromParams)
      printList(values, await listRecords(configOf(values), q), formatTable)
    },
  },
  {
    name: 'audit show',
    summary: 'print one audit record as JSON',
    options: { ...CONFIG_OPTION },
    examples: ['gatehouse audit show -c gatehouse.yaml 6f0c2a4e-8b1d-4c3a-9f2e-0d5b7a1c3e9f'],
    positionals: { name: 'ID', min: 1, max: 1 },
    async run(values, [id]) {
      const record = await showRecord(configOf(values), id!)
      if (!record) fail(`gatehouse audit show: no audit record ${id}`)
      printJson(record)
    },
  },
]
