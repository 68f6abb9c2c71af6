// The approvals JSON API on the admin listener, for the CLI and tools:
//   GET  /api/v1/approvals[?state=pending&identity=...]   approvals the caller may see
//   GET  /api/v1/approvals/<id>
//   POST /api/v1/approvals/<id>/approve   {"comment": "..."}
//   POST /api/v1/approvals/<id>/deny      {"comment": "..."}   (a comment is required)
// Admins (admin.subjects) see every approval; other callers see those they may decide on.
// Deciding needs an approver of the rule (or the break-glass group) who is not the requester
// and not a machine identity (decide.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Identity } from '../authn/index.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import type { ApprovalService } from '../approval/service.ts'
import { mayDecide, type DecisionOutcome } from '../approval/decide.ts'
import { approvalQuerySchema, type ApprovalRecord } from '../approval/record.ts'
import { queryFromParams, send } from './http.ts'

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

export async function handleApprovalsApi(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: { who: Identity; isAdmin: boolean; approvals: ApprovalService; config: ApprovalsConfig },
): Promise<void> {
  const m = /^\/api\/v1\/approvals(?:\/([^/]+)(?:\/(approve|deny))?)?$/.exec(url.pathname)
  if (!m) return send(res, 404, { error: `no such endpoint ${url.pathname}` })
  const visible = visibleTo(ctx.who, ctx.isAdmin, ctx.config)
  if (m[1] && m[2]) {
    if (req.method !== 'POST') return send(res, 405, { error: `use POST to ${m[2]}` })
    let body: unknown
    try {
      body = await readJson(req)
    } catch (e) {
      return send(res, 400, { error: `expected a JSON body: ${(e as Error).message}` })
    }
    const comment = (body as { comment?: unknown } | null)?.comment ?? ''
    if (typeof comment !== 'string') return send(res, 400, { error: 'comment: expected a string' })
    const r = await ctx.approvals.decide(decodeURIComponent(m[1]), {
      who: ctx.who,
      decision: m[2] as 'approve' | 'deny',
      comment,
      via: 'api',
    })
    return send(res, decisionStatus(r), 'error' in r ? { error: r.message } : r.approval)
  }
  if (req.method !== 'GET') return send(res, 405, { error: 'only GET is supported here' })
  if (m[1]) {
    const a = await ctx.approvals.get(decodeURIComponent(m[1]))
    if (!a || !visible(a)) return send(res, 404, { error: `no approval ${m[1]}` })
    return send(res, 200, a)
  }
  let q
  try {
    q = queryFromParams(
      url.searchParams,
      ['identity', 'cluster', 'namespace', 'state'],
      approvalQuerySchema,
    )
  } catch (e) {
    return send(res, 400, { error: (e as Error).message })
  }
  return send(res, 200, { items: (await ctx.approvals.list(q)).filter(visible) })
}
