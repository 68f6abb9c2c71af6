// forward: terminal stage. Ordinary requests stream through undici; upgrades become a tunnel.
import { forwardRequest } from '../../upstream/forward.ts'
import { tunnelUpgrade } from '../../upstream/tunnel.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'
import { sessionKindOf, type SessionManager } from '../../sessions/manager.ts'
import { unrecordedRelay } from '../../sessions/unrecorded.ts'
import type { SessionSlots } from '../../sessions/identity-slots.ts'
import { GatewayError } from '../../errors/index.ts'
import { helmReleaseReader, Masking } from '../../masking/profile.ts'
import { collectionDropper, filterSources, type PolicySet } from '../../policy/index.ts'
import {
  bodyMaskerFor,
  jsonAccept,
  maskPlanFor,
  UnmaskableResponse,
} from '../../masking/responses.ts'
import type { IncomingHttpHeaders } from 'node:http'
import type { ResponseFilter } from '../../upstream/forward.ts'
import { isLongRunning } from '../../kube/long-running.ts'

export interface ForwardHooks {
  /** Records and governs exec, attach and port-forward sessions (absent: spliced unrecorded). */
  sessions?: SessionManager
  /** Masks what callers receive, unless their policy turns it off (absent: nothing masked). */
  masking?: Masking
  /** The policy set in force: helm release Secrets go unmasked to identities that may write them. */
  policies?: () => PolicySet
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
  policies: (() => PolicySet) | undefined,
):
  | {
      headers: string[]
      filter: (status: number, h: IncomingHttpHeaders) => ResponseFilter | undefined
      /** Some Secrets may go out unmasked (helm releases): the audit record keeps none of it. */
      unmaskedSecrets: boolean
    }
  | undefined {
  const filters = ctx.decision?.obligations.filter
  const profile =
    masking?.forDecision(ctx.decision) ?? (filters && masking ? masking.forRecords : undefined)
  const maskValues = masking?.forDecision(ctx.decision) !== undefined
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
  const info = ctx.requestInfo!
  const helm =
    maskValues && policies && info.apiGroup === '' && info.resource === 'secrets'
      ? helmReleaseReader(policies(), ctx.identity!, ctx.cluster!.name)
      : undefined
  return {
    unmaskedSecrets: helm !== undefined,
    headers,
    filter: (status, h) => {
      // no body to mask
      if (ctx.req.method === 'HEAD' || status === 204 || status === 304) return undefined
      let masker
      try {
        masker = bodyMaskerFor(plan, profile, status, h, masking.maxObjectBytes, {
          // collections: filter: what deny rules name is left out of lists and watches
          ...(filters ? { drop: collectionDropper(filters, ctx.requestInfo!.resource) } : {}),
          mask: maskValues,
          ...(helm ? { keep: helm.mayRead, notice: helm.isRelease } : {}),
        })
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
          const masked =
            n === 0
              ? undefined
              : complete
                ? `Gatehouse masked ${n} value${n === 1 ? '' : 's'} (${source})`
                : `Gatehouse masked values in this response (${source})`
          // lists left out are always said, even when none was found yet (watches)
          const left = filters
            ? `Gatehouse leaves out of this ${plan.shape === 'watch' ? 'watch' : 'list'} the objects ${filterSources(filters)} protect${complete ? ` (${masker.dropped?.() ?? 0} left out)` : ''}`
            : undefined
          const releases = masker.noticed?.() ?? 0
          const helmNote = releases
            ? `Gatehouse masked ${releases} helm release Secret${releases === 1 ? '' : 's'}: helm cannot read a masked release; only an identity whose policy lets it update Secrets in the release's namespace reads them unmasked`
            : undefined
          return [left, masked, helmNote].filter(Boolean).join('; ') || undefined
        },
      }
    },
  }
}

/** A body Gatehouse rewrote (a pinned write) has a length of its own: undici sets it. */
function withoutLengthIf(body: Buffer | undefined, headers: string[]): string[] {
  if (!body) return headers
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i]!.toLowerCase() !== 'content-length') out.push(headers[i]!, headers[i + 1]!)
  return out
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
  sendTimeoutMs: number
  auditBodyBytes: number
  hooks: ForwardHooks
}): Stage {
  return {
    name: 'forward',
    async run(ctx: RequestContext) {
      const cluster = ctx.cluster!
      if (ctx.upgrade) return forwardUpgrade(ctx, opts.hooks)
      const longRunning = isLongRunning(ctx.requestInfo!)
      // a watch asked for by a client that already closed its sending side (half-close): nobody
      // will read it, and it would never end (src/gateway.ts)
      if (longRunning && ctx.req.httpVersionMajor === 1 && ctx.req.socket.readableEnded)
        throw new GatewayError(
          'GW_CLIENT_CLOSED',
          'the client closed its side of the connection before its long-running request was sent',
        )
      const sessions = opts.hooks.sessions
      const masked = maskingFor(ctx, opts.hooks.masking, opts.hooks.policies)
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
          headers: withoutLengthIf(ctx.upstreamBody, masked?.headers ?? ctx.upstreamHeaders!),
          maxBodyBytes: opts.maxBodyBytes,
          requestId: ctx.id,
          signal: ctx.signal,
          longRunning,
          sendTimeoutMs: opts.sendTimeoutMs,
          ...(masked ? { filter: masked.filter } : {}),
          ...((ctx.upstreamBody ?? ctx.requestBody)
            ? { body: ctx.upstreamBody ?? ctx.requestBody }
            : {}),
          warnings: ctx.warnings,
          captureBytes: captureBytes(
            ctx,
            opts.auditBodyBytes,
            masked !== undefined && !masked.unmaskedSecrets,
          ),
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
      ctx.sentBytes = result.sentBytes
      ctx.responseComplete = result.complete
      if (result.captured) ctx.responseBody = result.captured
    },
  }
}
