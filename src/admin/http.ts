// Small HTTP helpers of the admin listener: JSON answers and query strings → store queries.
import type { ServerResponse } from 'node:http'
import type { z } from 'zod'
import { parseTime } from '../audit/index.ts'

export function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

/** The most records, sessions or approvals one query returns. */
export const MAX_LIMIT = 10_000

/** A path segment decoded, or undefined when its percent-encoding is malformed (a 400, not a 500). */
export function decodeSegment(s: string): string | undefined {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/**
 * Query string → a query of `schema` (audit records or sessions): `fields` are copied as they
 * are, `since`/`until` are durations or ISO times, `limit` (and `offset`) whole numbers;
 * anything else is refused.
 * Throws a message naming the bad parameter.
 */
export function queryFromParams<S extends z.ZodType>(
  params: URLSearchParams,
  fields: readonly string[],
  schema: S,
  allowOffset = false,
): z.output<S> {
  const raw: Record<string, unknown> = {}
  for (const key of fields) if (params.has(key)) raw[key] = params.get(key)
  for (const [param, field] of [
    ['since', 'sinceMs'],
    ['until', 'untilMs'],
  ] as const) {
    const v = params.get(param)
    if (v === null) continue
    const t = parseTime(v)
    if (t === undefined)
      throw new Error(`${param}: expected a duration (30m, 2h, 7d) or an ISO time, got '${v}'`)
    raw[field] = t
  }
  for (const key of ['limit', 'offset'] as const) {
    const v = params.get(key)
    if (v === null) continue
    const max = key === 'limit' ? MAX_LIMIT : Number.MAX_SAFE_INTEGER
    const n = Number(v)
    if (!/^\d+$/.test(v) || n > max || (key === 'limit' && n < 1))
      throw new Error(
        key === 'limit'
          ? `limit: expected a whole number from 1 to ${MAX_LIMIT} (the most one query returns; narrow it with since/until${allowOffset ? ' or page with offset' : ''}), got '${v.slice(0, 20)}'`
          : `offset: expected a whole number, got '${v.slice(0, 20)}'`,
      )
    raw[key] = n
  }
  const known = new Set([...fields, 'since', 'until', 'limit', ...(allowOffset ? ['offset'] : [])])
  for (const key of params.keys())
    if (!known.has(key)) throw new Error(`unknown parameter '${key}'`)
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const i = parsed.error.issues[0]!
    throw new Error(`${i.path.join('.')}: ${i.message}`)
  }
  return parsed.data
}
