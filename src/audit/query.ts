// The audit query: one filter shape for the CLI, the admin API and both stores.
import { z } from 'zod'

export const DECISION_FILTERS = [
  'allow',
  'deny',
  'approve',
  'none',
  'shadow',
  'shadow-allow',
  'shadow-deny',
  'shadow-approve',
] as const

export const auditQuerySchema = z.strictObject({
  /** Identity name; `*` globs allowed (github:octo-org/*). */
  identity: z.string().min(1).optional(),
  cluster: z.string().min(1).optional(),
  namespace: z.string().optional(),
  verb: z.string().min(1).optional(),
  resource: z.string().min(1).optional(),
  /** The enforced action, or `shadow-<action>` (`shadow`: any) for what a shadow-mode policy would have decided. */
  decision: z.enum(DECISION_FILTERS).optional(),
  /** Epoch milliseconds, inclusive. */
  sinceMs: z.number().int().optional(),
  /** Epoch milliseconds, exclusive. */
  untilMs: z.number().int().optional(),
  limit: z.number().int().min(1).max(10_000).default(100),
})

export type AuditQuery = z.input<typeof auditQuerySchema>

/** `1h`, `30m`, `7d`, or an ISO timestamp → epoch ms (relative values count back from `now`). */
export function parseTime(value: string, now = Date.now()): number | undefined {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value.trim())
  if (rel) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      rel[2] as 's' | 'm' | 'h' | 'd'
    ]
    return now - Number(rel[1]) * unit
  }
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : t
}

/**
 * SQL WHERE clause for both dialects, for audit records and sessions alike: `identity` is a
 * name or a `*` glob, each of `columns` an exact match, `sinceMs`/`untilMs` a range of
 * `timeColumn`. `placeholder(i)` renders the i-th (0-based) parameter.
 */
export function filterClause(
  q: {
    identity?: string | undefined
    sinceMs?: number | undefined
    untilMs?: number | undefined
  } & Record<string, unknown>,
  columns: readonly string[],
  timeColumn: string,
  placeholder: (i: number) => string,
): { sql: string; params: unknown[] } {
  const parts: string[] = []
  const params: unknown[] = []
  const add = (expr: (p: string) => string, value: unknown): void => {
    parts.push(expr(placeholder(params.length)))
    params.push(value)
  }
  if (q.identity !== undefined) {
    if (q.identity.includes('*'))
      add(
        (p) => `identity LIKE ${p} ESCAPE '\\'`,
        q.identity.replace(/[\\%_]/g, '\\$&').replace(/\*/g, '%'),
      )
    else add((p) => `identity = ${p}`, q.identity)
  }
  for (const c of columns) if (q[c] !== undefined) add((p) => `${c} = ${p}`, q[c])
  if (q.sinceMs !== undefined) add((p) => `${timeColumn} >= ${p}`, q.sinceMs)
  if (q.untilMs !== undefined) add((p) => `${timeColumn} < ${p}`, q.untilMs)
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params }
}

export function whereClause(
  q: AuditQuery,
  placeholder: (i: number) => string,
): { sql: string; params: unknown[] } {
  const shadow = q.decision?.startsWith('shadow') ? q.decision : undefined
  const clause = filterClause(
    shadow ? { ...q, decision: undefined } : q,
    ['cluster', 'namespace', 'verb', 'resource', 'decision'],
    'time_ms',
    placeholder,
  )
  if (!shadow) return clause
  // The shadow outcome has no column: matched in the record's JSON, where the decision reads
  // "shadow":{"action":"deny",... (a string value cannot: its quotes are escaped as \").
  const action = shadow === 'shadow' ? '' : `${shadow.slice('shadow-'.length)}"`
  const like = `record LIKE ${placeholder(clause.params.length)}`
  return {
    sql: clause.sql ? `${clause.sql} AND ${like}` : `WHERE ${like}`,
    params: [...clause.params, `%"shadow":{"action":"${action}%`],
  }
}
