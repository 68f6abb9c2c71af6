// forward: terminal stage. Ordinary requests stream through undici; upgrades become a tunnel.
import { forwardRequest } from '../../upstream/forward.ts'
import { tunnelUpgrade } from '../../upstream/tunnel.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'
import { sessionKindOf, type SessionManager } from '../../sessions/manager.ts'

export interface ForwardHooks {
  /** Records and governs exec, attach and port-forward sessions (absent: spliced unrecorded). */
  sessions?: SessionManager
  /** Called when an upgraded connection starts; resolves when it ends (sessions are tracked for shutdown). */
  trackTunnel(ctx: RequestContext, closed: Promise<unknown>): void
}

/** Responses whose head the audit record may keep (Secrets never: their values are not recorded). */
function captureBytes(ctx: RequestContext, max: number): number {
  if (ctx.decision?.obligations.audit !== 'requestResponse') return 0
  const info = ctx.requestInfo
  if (info?.isResourceRequest && info.apiGroup === '' && info.resource === 'secrets') return 0
  return max
}

function isPodLog(ctx: RequestContext): boolean {
  const info = ctx.requestInfo
  return (
    !!info?.isResourceRequest &&
    info.verb === 'get' &&
    info.apiGroup === '' &&
    info.resource === 'pods' &&
    info.subresource === 'log'
  )
}

export function createForwardStage(opts: {
  maxBodyBytes: number
  auditBodyBytes: number
  hooks: ForwardHooks
}): Stage {
  return {
    name: 'forward',
    async run(ctx: RequestContext) {
      const cluster = ctx.cluster!
      if (ctx.upgrade) {
        const sessions = opts.hooks.sessions
        const kind = sessions ? sessionKindOf(ctx) : undefined
        const tunnel = await tunnelUpgrade({
          ...(sessions && kind
            ? {
                onSwitched: async (head: string) => {
                  const session = await sessions.begin(ctx, kind, head)
                  ctx.sessionId = session.record.id
                  return (client, upstream, first) => session.relay(client, upstream, first)
                },
              }
            : {}),
          cluster,
          req: ctx.req,
          socket: ctx.upgrade.socket,
          head: ctx.upgrade.head,
          path: ctx.upstreamPath!,
          headers: ctx.upstreamHeaders!,
        })
        ctx.responseStatus = tunnel.status
        opts.hooks.trackTunnel(ctx, tunnel.closed)
        return
      }
      const sessions = opts.hooks.sessions
      const log = sessions && isPodLog(ctx) ? await sessions.beginLog(ctx) : undefined
      const abortable: { abort?: () => void } = {}
      log?.onTerminate(() => abortable.abort?.())
      let result: Awaited<ReturnType<typeof forwardRequest>>
      try {
        result = await forwardRequest({
          cluster,
          req: ctx.req,
          res: ctx.res!,
          path: ctx.upstreamPath!,
          headers: ctx.upstreamHeaders!,
          maxBodyBytes: opts.maxBodyBytes,
          requestId: ctx.id,
          ...(ctx.requestBody ? { body: ctx.requestBody } : {}),
          warnings: ctx.warnings,
          captureBytes: captureBytes(ctx, opts.auditBodyBytes),
          ...(log
            ? {
                // only a 200 body is the pod's log; an error Status is not
                bodyTap: (status: number) =>
                  status === 200 ? (c: Buffer) => log.chunk(c) : undefined,
                abortable,
              }
            : {}),
        })
      } catch (e) {
        await log?.end(0, 0, 'the request failed before the API server answered')
        throw e
      }
      if (log) {
        ctx.sessionId = log.record.id
        await log.end(result.status, result.responseBytes)
      }
      ctx.responseStatus = result.status
      ctx.requestBytes = result.requestBytes
      ctx.responseBytes = result.responseBytes
      if (result.captured) ctx.responseBody = result.captured
    },
  }
}
