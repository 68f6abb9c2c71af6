// buildGateway(config, deps): wires clusters, authenticators and the pipeline into request and
// upgrade handlers. It never listens (src/http/server.ts does), so tests can run the whole app.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { GatewayHandlers } from './http/server.ts'
import { createRequestRecorder, type AuditWriter } from './audit/index.ts'
import type { Authenticator } from './authn/index.ts'
import type { GatewayConfig } from './config/index.ts'
import type { GatewayError } from './errors/index.ts'
import type { AuditRecord } from './audit/index.ts'
import type { Logger } from './observability/logger.ts'
import type { PolicySource } from './policy/index.ts'
import {
  buildChains,
  respondWithError,
  runChain,
  sendRefusal,
  type RequestContext,
} from './pipeline/index.ts'
import { requestFacts, responseFacts } from './pipeline/facts.ts'
import { createUpstreamCluster, type UpstreamCluster } from './upstream/cluster.ts'
import { Masking } from './masking/profile.ts'
import type { SessionManager } from './sessions/manager.ts'
import { SessionSlots } from './sessions/identity-slots.ts'
import type { ApprovalService } from './approval/service.ts'
import { ConcurrencyGate } from './pipeline/concurrency.ts'
import { isLongRunning } from './kube/long-running.ts'

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

/** The gateway: the listener's handlers (src/http/server.ts), plus what the server reports. */
export interface Gateway extends GatewayHandlers {
  readonly clusters: ReadonlyMap<string, UpstreamCluster>
  readonly warnings: readonly string[]
  /** Static warnings plus the live ones (a rejected policy change, an audit store outage). */
  currentWarnings(): string[]
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
  state: {
    draining: boolean
    auditAccepting: boolean
    warnings: readonly string[]
    load: ReturnType<ConcurrencyGate['stats']>
  },
): void {
  const problem = state.draining
    ? 'shutting down'
    : !state.auditAccepting
      ? 'audit trail unavailable: refusing requests'
      : state.load.saturated
        ? `saturated: at the bound of ${state.load.saturated}`
        : undefined
  const ready = path === HEALTHZ_PATH || !problem
  res.writeHead(ready ? 200 : 503, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  })
  const load = { requests: state.load.requests, streams: state.load.streams }
  res.end(JSON.stringify({ status: ready ? 'ok' : problem, warnings: state.warnings, load }) + '\n')
}

/**
 * Aborted when the client goes away before its response was ended: the connection closed, or
 * (HTTP/2) the stream was reset. Registered when the request arrives, so work still queued
 * behind authentication or an upstream slot stops too (rapid reset). HTTP/2's compatibility
 * response reports writableFinished and emits finish even for a reset stream; writableEnded
 * says whether Gatehouse ended it.
 *
 * HTTP/1.1 connections are half-open (src/http/server.ts): a client that sends its request and
 * then closes its sending side still gets its answer. A long-running request (a watch) is the
 * exception: it would never end, and most clients that close only their sending side are gone,
 * so end-of-input cancels it (`longRunning` is asked when that happens, and again by forward).
 */
function clientGoneSignal(
  req: IncomingMessage,
  res: ServerResponse | undefined,
  socket: Duplex | undefined,
  longRunning: () => boolean,
): AbortSignal {
  const abort = new AbortController()
  if (res) {
    const onEnd = (): void => {
      if (longRunning()) abort.abort()
    }
    const http1 = req.httpVersionMajor === 1
    if (http1) req.socket.once('end', onEnd)
    res.once('close', () => {
      if (http1) req.socket.off('end', onEnd)
      if (!res.writableEnded) abort.abort()
    })
  } else socket?.once('close', () => abort.abort())
  return abort.signal
}

/** The record of a connection refused before any request could be read from it. */
function refusedConnectionRecord(id: string, socket: Duplex, error: GatewayError): AuditRecord {
  return {
    id,
    time: new Date().toISOString(),
    durationMs: 0,
    cluster: null,
    identity: null,
    source: { address: (socket as { remoteAddress?: string }).remoteAddress ?? '' },
    request: null,
    decision: null,
    principal: null,
    response: { code: error.status, requestBytes: 0, responseBytes: 0 },
    error: { code: error.code, message: error.message },
  }
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
  let stopping: Promise<void> | undefined

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
  const concurrency = new ConcurrencyGate(config.limits.concurrency)
  const chains = buildChains({
    concurrency,
    bodyIdleMs: config.limits.requestBodyIdleMs,
    sendTimeoutMs: config.limits.sendTimeoutMs,
    clusters,
    authenticator: deps.authenticator,
    policies: () => deps.policies.current,
    admission: { draining: () => draining, admit: (request) => recorder.admit(request) },
    journal: (facts) => recorder.journal(facts),
    maxBodyBytes: config.limits.maxRequestBodyBytes,
    auditBodyBytes: config.audit.maxBodyBytes,
    approvals: deps.approvals,
    sessions: deps.sessions,
    masking,
    tunnel: {
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
  ): RequestContext => {
    const ctx: RequestContext = {
      id: randomUUID(),
      receivedAt: Date.now(),
      req,
      res,
      upgrade,
      sourceAddress: req.socket.remoteAddress ?? '',
      timings: {},
      warnings: [],
      signal: clientGoneSignal(
        req,
        res,
        upgrade?.socket,
        () => ctx.requestInfo !== undefined && isLongRunning(ctx.requestInfo),
      ),
      cleanups: [],
    }
    return ctx
  }

  const complete = (ctx: RequestContext, error: GatewayError | undefined): void => {
    recorder.complete(requestFacts(ctx), responseFacts(ctx), error, ctx.journaled)
    deps.onComplete?.(ctx, error)
  }

  const refuse = (ctx: RequestContext, error: GatewayError): void => {
    respondWithError(ctx, error)
    complete(ctx, error)
  }

  const run = (ctx: RequestContext): void => {
    inflight.add(ctx)
    const chain = ctx.upgrade ? chains.upgrade : chains.plain
    void runChain(chain, ctx, { logger: deps.logger, onComplete: complete }).finally(() =>
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
          load: concurrency.stats(),
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
    refuseRequest(req, res, error) {
      refuse(newContext(req, res, undefined), error)
    },
    refuseConnection(socket, error) {
      const id = randomUUID()
      sendRefusal({ socket }, id, error)
      // Bounded and, past the thresholds, counted like every refusal (a flood of malformed
      // connections costs the store no more than one of bad requests).
      if (error.code !== 'GW_AUDIT_UNAVAILABLE' && deps.audit.admits())
        recorder.refusal(refusedConnectionRecord(id, socket, error))
    },
    shutdown(graceMs) {
      // idempotent: the listener's close and a caller may both ask
      return (stopping ??= drain(graceMs))
    },
  }

  async function drain(graceMs: number): Promise<void> {
    draining = true
    // Held requests end at once (their approvals stay pending; a retry finds them).
    deps.approvals?.shutdown()
    const deadline = Date.now() + graceMs
    // Watches never finish by themselves: end them so clients re-establish them elsewhere.
    for (const ctx of inflight) {
      if (ctx.requestInfo?.verb === 'watch' || ctx.req.url?.includes('follow=true')) ctx.res?.end()
    }
    while (inflight.size > tunnels.size && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    for (const ctx of inflight) ctx.res?.destroy()
    // Recorded sessions are told why they end, and their records are saved.
    await deps.sessions?.shutdown()
    for (const s of tunnels) s.destroy()
    await Promise.all([...clusters.values()].map((c) => c.close()))
    recorder.close()
  }
}
