// hold: a request whose decision is `approve` waits here for people (or is refused at once with
// the approval's id, for rules with wait: retry). The body was read whole before authorize, so
// nothing streams while it waits; the client's connection simply stays open (no server timeout
// applies: src/http/server.ts sets requestTimeout 0). Nothing of the request reaches the
// cluster before it is approved, but a new approval's dryRun=All copy does (Audit-ID
// <id>-dry-run): approvers are shown what the API server would make of it.
import { dryRunOf } from '../../approval/dry-run.ts'
import type { HeldRequest } from '../../approval/request.ts'
import type { ApprovalService } from '../../approval/service.ts'
import { GatewayError } from '../../errors/index.ts'
import { required, type RequestContext } from '../context.ts'
import { decidedRequest } from '../facts.ts'
import type { Stage } from '../stage.ts'
import { createImpersonateStage } from './impersonate.ts'

/**
 * Aborted when the client of a held request is gone: its connection closed, its stream reset
 * (ctx.signal), or its sending side ended. Connections are half-open (a plain request may be
 * answered after the client's FIN), but a held request must not spend an approval on a client
 * that may not be there to see it.
 */
function goneSignal(ctx: RequestContext): AbortSignal {
  // HTTP/2: the stream's own close and reset are in ctx.signal; its socket is a proxy of the
  // stream, whose 'end' is only the end of the request body
  const socket =
    ctx.upgrade?.socket ?? (ctx.req.httpVersionMajor === 1 ? ctx.req.socket : undefined)
  const gone = new AbortController()
  const onGone = (): void => gone.abort()
  if (ctx.signal.aborted || socket?.destroyed || socket?.readableEnded) onGone()
  else {
    ctx.signal.addEventListener('abort', onGone, { once: true })
    ctx.res?.once('close', onGone)
    socket?.once('end', onGone)
    socket?.once('close', onGone)
    ctx.cleanups.push(() => {
      ctx.signal.removeEventListener('abort', onGone)
      ctx.res?.off('close', onGone)
      socket?.off('end', onGone)
      socket?.off('close', onGone)
    })
  }
  return gone.signal
}

/** The dry run approvers are shown: the request as the impersonate stage would send it. */
async function dryRun(ctx: RequestContext): Promise<Awaited<ReturnType<typeof dryRunOf>>> {
  const info = required(ctx.requestInfo, 'request attributes')
  const copy: RequestContext = { ...ctx, id: `${ctx.id}-dry-run`, timings: {}, warnings: [] }
  await createImpersonateStage().run(copy)
  return dryRunOf({
    cluster: required(ctx.cluster, 'a cluster'),
    info,
    method: ctx.req.method ?? 'GET',
    path: required(ctx.upstreamPath, 'an upstream path'),
    body: ctx.upstreamBody ?? ctx.requestBody,
    headers: required(copy.upstreamHeaders, 'upstream headers'),
  })
}

export function createHoldStage(approvals: ApprovalService | undefined): Stage {
  return {
    name: 'hold',
    async run(ctx: RequestContext) {
      if (ctx.decision?.action !== 'approve') return
      if (!approvals)
        throw new GatewayError(
          'GW_APPROVAL_PENDING',
          'this request needs an approval, but approvals are not running on this Gatehouse',
        )
      const held: HeldRequest = {
        request: decidedRequest(ctx),
        gone: goneSignal(ctx),
        dryRun: () => dryRun(ctx),
        link: (approval) => (ctx.approval = approval),
      }
      await approvals.hold(held)
    },
  }
}
