// buildGateway(config, deps): wires clusters, authenticators and the pipeline into request and
// upgrade handlers. It never listens (src/http/server.ts does), so tests can run the whole app.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { createRequestRecorder, type AuditWriter } from './audit/index.ts'
import type { Authenticator } from './authn/index.ts'
import type { GatewayConfig } from './config/index.ts'
import { GatewayError } from './errors/index.ts'
import type { Logger } from './observability/logger.ts'
import type { PolicySource } from './policy/index.ts'
import { buildChain, respondWithError, runStages, type RequestContext } from './pipeline/index.ts'
import { createUpstreamCluster, type UpstreamCluster } from './upstream/cluster.ts'
import { Masking } from './masking/profile.ts'
import type { SessionManager } from './sessions/manager.ts'
import { SessionSlots } from './sessions/identity-slots.ts'
import type { ApprovalService } from './approval/service.ts'

export interface GatewayDeps {
  authenticator: Authenticator
  logger: Logger
  /** Upstream clusters, when the caller built them already (to share them with TokenReview). */
  clusters?: ReadonlyMap<string, UpstreamCluster>
  policies: PolicySource
  audit: AuditWriter
  /** Records and governs exec, attach and port-forward sessions. */
  sessions?: SessionManager
  /** Holds requests whose decision is approve until people decide. */
  approvals?: ApprovalService
  /** Masking of responses (shared with the session manager); default: from config. */
  masking?: Masking
  /** Called after every request, however it ended (after its audit record is queued). */
  onComplete?: (ctx: RequestContext, error: GatewayError | undefined) => void
}

export interface Gateway {
  readonly clusters: ReadonlyMap<string, UpstreamCluster>
  readonly warnings: readonly string[]
  /** Static warnings plus the live ones (a rejected policy change, an audit store outage). */
  currentWarnings(): string[]
  handleRequest(req: IncomingMessage, res: ServerResponse): void
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Stop taking requests; let plain ones finish within graceMs; end watches and sessions. */
  shutdown(graceMs: number): Promise<void>
}

/** Gatehouse's own probes; outside every Kubernetes path, so they never shadow the API. */
export const HEALTHZ_PATH = '/gatehouse/healthz'
export const READYZ_PATH = '/gatehouse/readyz'

/**
 * healthz: the process serves. readyz: it takes traffic (503 while draining) and lists the
 * configuration warnings an operator must see (for example disabled upstream TLS verification).
 */
function serveHealth(
  path: string,
  res: ServerResponse,
  state: { draining: boolean; auditAccepting: boolean; warnings: readonly string[] },
): void {
  const problem = state.draining
    ? 'shutting down'
    : !state.auditAccepting
      ? 'audit trail unavailable: refusing requests'
      : undefined
  const ready = path === HEALTHZ_PATH || !problem
  res.writeHead(ready ? 200 : 503, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  })
  res.end(JSON.stringify({ status: ready ? 'ok' : problem, warnings: state.warnings }) + '\n')
}

export function createClusters(config: GatewayConfig): ReadonlyMap<string, UpstreamCluster> {
  return new Map(config.clusters.map((c) => [c.name, createUpstreamCluster(c)]))
}

export function buildGateway(config: GatewayConfig, deps: GatewayDeps): Gateway {
  const clusters = deps.clusters ?? createClusters(config)
  const warnings = [...clusters.values()].flatMap((c) => c.warnings)
  if (!config.sessions.record)
    warnings.push(
      'sessions.record is false: exec, attach and port-forward are relayed without session records, recordings, limits or kill',
    )
  const inflight = new Set<RequestContext>()
  const tunnels = new Set<Duplex>()
  let draining = false

  const currentWarnings = (): string[] => {
    const live = [...warnings]
    const policy = deps.policies.status
    if (policy.error)
      live.push(`policy change rejected, the last good set stays in force: ${policy.error}`)
    if (policy.policies === 0) live.push('no policies are loaded: every request is denied')
    const audit = deps.audit.stats()
    if (!audit.storeHealthy)
      live.push(
        `audit store ${deps.audit.store.location} is failing (${audit.buffered} records buffered): ${audit.lastError ?? ''}`,
      )
    return live
  }

  const masking = deps.masking ?? new Masking(config.masking, config.dataDir)
  const recorder = createRequestRecorder({
    writer: deps.audit,
    maxBodyBytes: config.audit.maxBodyBytes,
    masking: () => masking.forRecords.objects,
    refusals: config.audit.refusals,
    logger: deps.logger,
  })
  const chain = buildChain({
    clusters,
    authenticator: deps.authenticator,
    policies: () => deps.policies.current,
    admit: (request) => recorder.admit(request),
    journal: (ctx) => recorder.journal(ctx),
    maxBodyBytes: config.limits.maxRequestBodyBytes,
    auditBodyBytes: config.audit.maxBodyBytes,
    approvals: deps.approvals,
    hooks: {
      ...(deps.sessions ? { sessions: deps.sessions } : {}),
      masking,
      sessionSlots: new SessionSlots(config.sessions.maxPerIdentity),
      trackTunnel(ctx, closed) {
        const socket = ctx.upgrade!.socket
        tunnels.add(socket)
        void closed.finally(() => tunnels.delete(socket))
      },
    },
  })

  const newContext = (
    req: IncomingMessage,
    res: ServerResponse | undefined,
    upgrade: RequestContext['upgrade'],
  ): RequestContext => ({
    id: randomUUID(),
    receivedAt: Date.now(),
    req,
    res,
    upgrade,
    sourceAddress: req.socket.remoteAddress ?? '',
    timings: {},
    warnings: [],
  })

  const complete = (ctx: RequestContext, error: GatewayError | undefined): void => {
    recorder.complete(ctx, error)
    deps.onComplete?.(ctx, error)
  }

  const run = (ctx: RequestContext): void => {
    if (draining) {
      respondWithError(
        ctx,
        new GatewayError(
          'GW_SHUTTING_DOWN',
          'Gatehouse is shutting down; retry against another replica',
        ),
      )
      return
    }
    inflight.add(ctx)
    void runStages(chain, ctx, { logger: deps.logger, onComplete: complete }).finally(() =>
      inflight.delete(ctx),
    )
  }

  return {
    clusters,
    warnings,
    currentWarnings,
    handleRequest(req, res) {
      if (req.url === HEALTHZ_PATH || req.url === READYZ_PATH)
        return serveHealth(req.url, res, {
          draining,
          auditAccepting: deps.audit.accepting(),
          warnings: currentWarnings(),
        })
      run(newContext(req, res, undefined))
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => undefined)
      // Once Gatehouse has said its last (a refusal, a relayed answer, a session's end), the
      // client's bytes are read and dropped (closing with unread data would reset the answer
      // away) and the connection is closed even if the client never hangs up.
      socket.once('finish', () => {
        socket.resume()
        setTimeout(() => socket.destroy(), 5000).unref()
      })
      run(newContext(req, undefined, { socket, head }))
    },
    async shutdown(graceMs) {
      draining = true
      // Held requests end at once (their approvals stay pending; a retry finds them).
      deps.approvals?.shutdown()
      const deadline = Date.now() + graceMs
      // Watches never finish by themselves: end them so clients re-establish them elsewhere.
      for (const ctx of inflight) {
        if (ctx.requestInfo?.verb === 'watch' || ctx.req.url?.includes('follow=true'))
          ctx.res?.end()
      }
      while (inflight.size > tunnels.size && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      for (const ctx of inflight) ctx.res?.destroy()
      // Recorded sessions are told why they end, and their records are saved.
      await deps.sessions?.shutdown()
      for (const s of tunnels) s.destroy()
      await Promise.all([...clusters.values()].map((c) => c.close()))
      recorder.close()
    },
  }
}
