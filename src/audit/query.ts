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
