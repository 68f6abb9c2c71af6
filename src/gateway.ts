// buildGateway(config, deps): wires clusters, authenticators and the pipeline into request and
// upgrade handlers. It never listens (src/http/server.ts does), so tests can run the whole app.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Authenticator } from './authn/index.ts'
import type { GatewayConfig } from './config/index.ts'
import { GatewayError } from './errors/index.ts'
import type { Logger } from './observability/logger.ts'
import { buildChain, respondWithError, runStages, type RequestContext } from './pipeline/index.ts'
import { createUpstreamCluster, type UpstreamCluster } from './upstream/cluster.ts'

export interface GatewayDeps {
  authenticator: Authenticator
  logger: Logger
  /** Upstream clusters, when the caller built them already (to share them with TokenReview). */
  clusters?: ReadonlyMap<string, UpstreamCluster>
  /** Called after every request, however it ended (audit plugs in here). */
  onComplete?: (ctx: RequestContext, error: GatewayError | undefined) => void
}

export interface Gateway {
  readonly clusters: ReadonlyMap<string, UpstreamCluster>
  readonly warnings: readonly string[]
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
  draining: boolean,
  warnings: readonly string[],
): void {
  const ready = path === HEALTHZ_PATH || !draining
  res.writeHead(ready ? 200 : 503, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  })
  res.end(JSON.stringify({ status: ready ? 'ok' : 'shutting down', warnings }) + '\n')
}

export function createClusters(config: GatewayConfig): ReadonlyMap<string, UpstreamCluster> {
  return new Map(config.clusters.map((c) => [c.name, createUpstreamCluster(c)]))
}

export function buildGateway(config: GatewayConfig, deps: GatewayDeps): Gateway {
  const clusters = deps.clusters ?? createClusters(config)
  const warnings = [...clusters.values()].flatMap((c) => c.warnings)
  const inflight = new Set<RequestContext>()
  const tunnels = new Set<Duplex>()
  let draining = false

  const chain = buildChain({
    clusters,
    authenticator: deps.authenticator,
    maxBodyBytes: config.limits.maxRequestBodyBytes,
    hooks: {
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
  })

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
    void runStages(chain, ctx, {
      logger: deps.logger,
      ...(deps.onComplete ? { onComplete: deps.onComplete } : {}),
    }).finally(() => inflight.delete(ctx))
  }

  return {
    clusters,
    warnings,
    handleRequest(req, res) {
      if (req.url === HEALTHZ_PATH || req.url === READYZ_PATH)
        return serveHealth(req.url, res, draining, warnings)
      run(newContext(req, res, undefined))
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => undefined)
      run(newContext(req, undefined, { socket, head }))
    },
    async shutdown(graceMs) {
      draining = true
      const deadline = Date.now() + graceMs
      // Watches never finish by themselves: end them so clients re-establish them elsewhere.
      for (const ctx of inflight) {
        if (ctx.requestInfo?.verb === 'watch' || ctx.req.url?.includes('follow=true'))
          ctx.res?.end()
      }
      while (inflight.size > tunnels.size && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      for (const ctx of inflight) ctx.res?.destroy()
      for (const s of tunnels) s.destroy()
      await Promise.all([...clusters.values()].map((c) => c.close()))
    },
  }
}
