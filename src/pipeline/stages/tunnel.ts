// tunnel: the upgrade chain's terminal stage, for exec, attach and port-forward. Our own
// connection to the API server (src/upstream/tunnel.ts), and after its 101 a relay through the
// session tap: recorded (src/sessions/manager.ts) or, with sessions.record false, unrecorded but
// still read frame by frame and masked. Any other answer is relayed as an ordinary response.
import { GatewayError } from '../../errors/index.ts'
import { sessionKindOf } from '../../kube/predicates.ts'
import type { Masking } from '../../masking/profile.ts'
import type { SessionSlots } from '../../sessions/identity-slots.ts'
import type { SessionManager } from '../../sessions/manager.ts'
import { unrecordedRelay } from '../../sessions/unrecorded.ts'
import { tunnelUpgrade } from '../../upstream/tunnel.ts'
import { required, type RequestContext } from '../context.ts'
import { decidedRequest } from '../facts.ts'
import type { Terminal } from '../stage.ts'

export interface TunnelDeps {
  /** Records and governs sessions (absent: relayed through the tap unrecorded). */
  sessions?: SessionManager | undefined
  /** Masks what callers receive of exec and attach, unless their policy turns it off. */
  masking?: Masking | undefined
  /** The bound on sessions one identity has open at once (sessions.maxPerIdentity). */
  sessionSlots?: SessionSlots | undefined
  /** Called when an upgraded connection starts; `closed` resolves when it ends (shutdown). */
  trackTunnel(ctx: RequestContext, closed: Promise<unknown>): void
}

export function createTunnelStage(deps: TunnelDeps): Terminal {
  return {
    name: 'forward',
    async run(ctx: RequestContext) {
      const kind = sessionKindOf(ctx.requestInfo)
      const upgrade = ctx.upgrade
      if (!kind || !upgrade)
        throw new GatewayError('GW_UPGRADE_UNSUPPORTED', 'not an exec, attach or port-forward')
      const facts = decidedRequest(ctx)
      const { sessions } = deps
      const release = deps.sessionSlots?.acquire(facts.identity.name) ?? ((): void => undefined)
      let tunnel
      try {
        tunnel = await tunnelUpgrade({
          onSwitched: async (head: string) => {
            if (!sessions)
              return unrecordedRelay(
                kind,
                head,
                facts.info.query,
                deps.masking?.forDecision(facts.decision),
              )
            const session = await sessions.begin(facts, kind, head)
            ctx.sessionId = session.record.id
            return (client, upstream, first, clientFirst) =>
              session.relay(client, upstream, first, clientFirst)
          },
          cluster: required(ctx.cluster, 'a cluster'),
          req: ctx.req,
          socket: upgrade.socket,
          head: upgrade.head,
          path: required(ctx.upstreamPath, 'an upstream path'),
          headers: required(ctx.upstreamHeaders, 'upstream headers'),
        })
      } catch (e) {
        release()
        throw e
      }
      void tunnel.closed.finally(release)
      ctx.responseStatus = tunnel.status
      deps.trackTunnel(ctx, tunnel.closed)
    },
  }
}
