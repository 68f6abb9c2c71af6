// The approvals JSON API on the admin listener, for the CLI and tools:
//   GET  /api/v1/approvals[?state=pending&identity=...&limit=50&offset=0]
//        {items, total, offset, limit}: a page of the approvals the caller may see, and how many
//   GET  /api/v1/approvals/<id>
//   POST /api/v1/approvals/<id>/approve   {"comment": "..."}
//   POST /api/v1/approvals/<id>/deny      {"comment": "..."}   (a comment is required)
// Admins (admin.subjects) see every approval; other callers see those they may decide on and
// their own. An approval the caller cannot see is a 404 for GET and POST alike (a POST never
// tells its state). Deciding needs an approver of the rule (or the break-glass group) who is
// not the requester, not a machine identity, with a token of the approvers' login (decide.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Identity } from '../authn/index.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import type { ApprovalService } from '../approval/service.ts'
import { mayDecide, type DecisionOutcome } from '../approval/decide.ts'
import { approvalQuerySchema, type ApprovalRecord } from '../approval/record.ts'
import { decodeSegment, queryFromParams, send } from './http.ts'

const ERROR_STATUS = {
  'not-found': 404,
  'not-pending': 409,
  forbidden: 403,
  invalid: 400,
  conflict: 409,
}

export function decisionStatus(r: DecisionOutcome): number {
  return 'error' in r ? ERROR_STATUS[r.error] : 200
}

export async function readJson(req: IncomingMessage, limit = 16 * 1024): Promise<unknown> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length
    if (n > limit) throw new Error('request body too large')
    chunks.push(c)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  return text ? (JSON.parse(text) as unknown) : {}
}

/** Whether one approval is visible to `who` (the store-side filter's twin for single records). */
export function visibleTo(
  who: Identity,
  isAdmin: boolean,
  config: ApprovalsConfig,
): (a: ApprovalRecord) => boolean {
  return (a) => {
    if (isAdmin || a.requester.name === who.name) return true
    const m = mayDecide(a, who, { breakGlass: config.breakGlass })
    return m.approver || m.breakGlass
  }
}

interface ApiContext {
  who: Identity
  isAdmin: boolean
  approvals: ApprovalService
  config: ApprovalsConfig
}

async function decideRoute(
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  decision: 'approve' | 'deny',
  ctx: ApiContext,
): Promise<void> {
  if (req.method !== 'POST') return send(res, 405, { error: `use POST to ${decision}` })
  const a = await ctx.approvals.get(id)
  if (!a || !visibleTo(ctx.who, ctx.isAdmin, ctx.config)(a))
    return send(res, 404, { error: `no approval ${id}` })
  let body: unknown
  try {
    body = await readJson(req)
  } catch (e) {
    return send(res, 400, { error: `expected a JSON body: ${(e as Error).message}` })
  }
  const comment = (body as { comment?: unknown } | null)?.comment ?? ''
  if (typeof comment !== 'string') return send(res, 400, { error: 'comment: expected a string' })
  const r = await ctx.approvals.decide(id, { who: ctx.who, decision, comment, via: 'api' })
  return send(res, decisionStatus(r), 'error' in r ? { error: r.message } : r.approval)
}

export async function handleApprovalsApi(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: ApiContext,
): Promise<void> {
  const m = /^\/api\/v1\/approvals(?:\/([^/]+)(?:\/(approve|deny))?)?$/.exec(url.pathname)
  if (!m) return send(res, 404, { error: `no such endpoint ${url.pathname}` })
  const id = m[1] === undefined ? undefined : decodeSegment(m[1])
  if (m[1] !== undefined && id === undefined)
    return send(res, 400, { error: 'the approval id has malformed percent-encoding' })
  if (id !== undefined && m[2]) return decideRoute(req, res, id, m[2] as 'approve' | 'deny', ctx)
  if (req.method !== 'GET') return send(res, 405, { error: 'only GET is supported here' })
  if (id !== undefined) {
    const a = await ctx.approvals.get(id)
    if (!a || !visibleTo(ctx.who, ctx.isAdmin, ctx.config)(a))
      return send(res, 404, { error: `no approval ${id}` })
    return send(res, 200, a)
  }
  let q
  try {
    q = queryFromParams(
      url.searchParams,
      ['identity', 'cluster', 'namespace', 'state'],
      approvalQuerySchema,
      true,
    )
  } catch (e) {
    return send(res, 400, { error: (e as Error).message })
  }
  const page = await ctx.approvals.page(ctx.who, ctx.isAdmin, q)
  return send(res, 200, { items: page.items, total: page.total, offset: q.offset, limit: q.limit })
}
