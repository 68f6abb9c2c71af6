// The WHERE clause the domains' listings share (audit records, sessions, approvals).

/**
 * SQL WHERE clause for both dialects: `identity` is a name or a `*` glob, each of `columns` an
 * exact match, `sinceMs`/`untilMs` a range of `timeColumn`. `placeholder(i)` renders the i-th
 * (0-based) parameter.
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
