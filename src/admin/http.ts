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

/**
 * Query string → a query of `schema` (audit records or sessions): `fields` are copied as they
 * are, `since`/`until` are durations or ISO times, `limit` a number; anything else is refused.
 * Throws a message naming the bad parameter.
 */
export function queryFromParams<S extends z.ZodType>(
  params: URLSearchParams,
  fields: readonly string[],
  schema: S,
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
  if (params.has('limit')) raw['limit'] = Number(params.get('limit'))
  const known = new Set([...fields, 'since', 'until', 'limit'])
  for (const key of params.keys())
    if (!known.has(key)) throw new Error(`unknown parameter '${key}'`)
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const i = parsed.error.issues[0]!
    throw new Error(`${i.path.join('.')}: ${i.message}`)
  }
  return parsed.data
}
