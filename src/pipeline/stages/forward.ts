// forward: terminal stage. Ordinary requests stream through undici; upgrades become a tunnel.
import { forwardRequest } from '../../upstream/forward.ts'
import { tunnelUpgrade } from '../../upstream/tunnel.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'
import { sessionKindOf, type SessionManager } from '../../sessions/manager.ts'
import { unrecordedRelay } from '../../sessions/unrecorded.ts'
import type { SessionSlots } from '../../sessions/identity-slots.ts'
import { GatewayError } from '../../errors/index.ts'
import { Masking } from '../../masking/profile.ts'
import {
  bodyMaskerFor,
  jsonAccept,
  maskPlanFor,
  UnmaskableResponse,
} from '../../masking/responses.ts'
import type { IncomingHttpHeaders } from 'node:http'
import type { ResponseFilter } from '../../upstream/forward.ts'

export interface ForwardHooks {
  /** Records and governs exec, attach and port-forward sessions (absent: spliced unrecorded). */
  sessions?: SessionManager
  /** Masks what callers receive, unless their policy turns it off (absent: nothing masked). */
  masking?: Masking
  /** Called when an upgraded connection starts; resolves when it ends (sessions are tracked for shutdown). */
  trackTunnel(ctx: RequestContext, closed: Promise<unknown>): void
  /** The bound on sessions one identity has open at once (sessions.maxPerIdentity). */
  sessionSlots?: SessionSlots
}

/**
 * exec, attach, port-forward (the upgrade stage let nothing else through): our own connection to
 * the API server, and after its 101 a relay through the session tap, recorded or not.
 */
async function forwardUpgrade(ctx: RequestContext, hooks: ForwardHooks): Promise<void> {
  const kind = sessionKindOf(ctx)
  if (!kind) throw new GatewayError('GW_UPGRADE_UNSUPPORTED', 'not an exec, attach or port-forward')
  const { sessions } = hooks
  const release = hooks.sessionSlots?.acquire(ctx.identity?.name ?? '') ?? ((): void => undefined)
  const query = new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? '')
  let tunnel
  try {
    tunnel = await tunnelUpgrade({
      onSwitched: async (head: string) => {
        if (!sessions)
          return unrecordedRelay(kind, head, query, hooks.masking?.forDecision(ctx.decision))
        const session = await sessions.begin(ctx, kind, head)
        ctx.sessionId = session.record.id
        return (client, upstream, first, clientFirst) =>
          session.relay(client, upstream, first, clientFirst)
      },
      cluster: ctx.cluster!,
      req: ctx.req,
      socket: ctx.upgrade!.socket,
      head: ctx.upgrade!.head,
      path: ctx.upstreamPath!,
      headers: ctx.upstreamHeaders!,
    })
  } catch (e) {
    release()
    throw e
  }
  void tunnel.closed.finally(release)
  ctx.responseStatus = tunnel.status
  hooks.trackTunnel(ctx, tunnel.closed)
}

/**
 * Responses whose head the audit record may keep. A Secret's only when Gatehouse masked it on
 * its way to the client (the audit build masks text again, but cannot decode a Secret's base64).
 */
function captureBytes(ctx: RequestContext, max: number, masked: boolean): number {
  if (ctx.decision?.obligations.audit !== 'requestResponse') return 0
  const info = ctx.requestInfo
  if (!masked && info?.isResourceRequest && info.apiGroup === '' && info.resource === 'secrets')
    return 0
  return max
}

/**
 * The masking of this response: the upstream headers to send instead (JSON asked for, no
 * compression: Gatehouse must read the body), and the filter the forwarder runs the body
 * through once it sees what arrived.
 */
function maskingFor(
  ctx: RequestContext,
  masking: Masking | undefined,
):
  | {
      headers: string[]
      filter: (status: number, h: IncomingHttpHeaders) => ResponseFilter | undefined
    }
  | undefined {
  const profile = masking?.forDecision(ctx.decision)
  if (!masking || !profile) return undefined
  const target = ctx.upstreamPath ?? ''
  const q = target.indexOf('?')
  const plan = maskPlanFor(ctx.requestInfo, new URLSearchParams(q < 0 ? '' : target.slice(q + 1)))
  if (!plan) return undefined
  const headers: string[] = []
  const src = ctx.upstreamHeaders!
  let accept: string | undefined
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!.toLowerCase()
    if (name === 'accept') accept = accept === undefined ? src[i + 1]! : `${accept},${src[i + 1]!}`
    else if (name !== 'accept-encoding') headers.push(src[i]!, src[i + 1]!)
  }
  // pod logs and proxied responses keep the client's Accept; objects are asked for as JSON
  if (plan.body === 'json') headers.push('Accept', jsonAccept(accept))
  else if (accept !== undefined) headers.push('Accept', accept)
  const source = Masking.source(ctx.decision)
  return {
    headers,
    filter: (status, h) => {
      // no body to mask
      if (ctx.req.method === 'HEAD' || status === 204 || status === 304) return undefined
      let masker
      try {
        masker = bodyMaskerFor(plan, profile, status, h, masking.maxObjectBytes)
      } catch (e) {
        if (e instanceof UnmaskableResponse)
          throw new GatewayError('GW_RESPONSE_UNMASKABLE', e.message, { cause: e })
        throw e
      }
      return {
        transform: masker.transform,
        streaming: plan.streaming,
        warning(complete) {
          const n = masker.masked()
          if (n === 0) return undefined
          return complete
            ? `Gatehouse masked ${n} value${n === 1 ? '' : 's'} (${source})`
            : `Gatehouse masked values in this response (${source})`
        },
      }
    },
  }
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
      if (ctx.upgrade) return forwardUpgrade(ctx, opts.hooks)
      const sessions = opts.hooks.sessions
      const masked = maskingFor(ctx, opts.hooks.masking)
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
          headers: masked?.headers ?? ctx.upstreamHeaders!,
          maxBodyBytes: opts.maxBodyBytes,
          requestId: ctx.id,
          ...(masked ? { filter: masked.filter } : {}),
          ...(ctx.requestBody ? { body: ctx.requestBody } : {}),
          warnings: ctx.warnings,
          captureBytes: captureBytes(ctx, opts.auditBodyBytes, masked !== undefined),
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
