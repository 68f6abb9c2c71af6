// One cluster behind the gateway: where it is, how Gatehouse authenticates to it, and a pooled
// HTTP/1.1 connection to it.
import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { Agent, request } from 'undici'
import type { ClusterConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { resolveUpstream, type ResolvedUpstream } from './credential.ts'

export interface UpstreamCluster {
  readonly name: string
  readonly config: ClusterConfig
  readonly server: URL
  /** Short requests. */
  readonly agent: Agent
  /**
   * Long-running requests (watches, logs, proxy): their own pool, so that however many are
   * open they never take a connection a short request needs. Neither pool has a connection cap:
   * Gatehouse's concurrency bounds (limits.concurrency) and the API server's own limits are
   * the backstop, and a fixed cap made request 257 wait behind 256 watches.
   */
  readonly streams: Agent
  /** Open upstream connections and queued requests, per pool (readyz, tests). */
  poolStats(): { requests: PoolCounts; streams: PoolCounts }
  /** TLS options for raw upgrade connections (the same trust and client certificate as the agent). */
  readonly tls: ConnectionOptions
  readonly warnings: string[]
  /** The Authorization header value for forwarded requests (own token, or a minted ServiceAccount token). */
  authorization(): Promise<string | undefined>
  /** A short-lived token of this ServiceAccount (TokenRequest API), cached until most of its life is spent. */
  serviceAccountAuthorization(sa: { namespace: string; name: string }): Promise<string>
  /** Gatehouse's own Authorization header, for its own calls (TokenReview, TokenRequest). */
  ownAuthorization(): string | undefined
  close(): Promise<void>
}

export interface PoolCounts {
  connected: number
  running: number
  queued: number
}

function countsOf(agent: Agent): PoolCounts {
  const out = { connected: 0, running: 0, queued: 0 }
  // an Agent makes a Pool per origin (connections: null): PoolStats
  for (const st of Object.values(agent.stats)) {
    if (typeof st.connected !== 'number' || !('queued' in st)) continue
    out.connected += st.connected
    out.running += st.running
    out.queued += st.queued
  }
  return out
}

interface MintedToken {
  token: string
  refreshAt: number
}

export function createUpstreamCluster(
  config: ClusterConfig,
  now: () => number = Date.now,
): UpstreamCluster {
  const resolved: ResolvedUpstream = resolveUpstream(config)
  const warnings: string[] = []
  if (resolved.insecureSkipTLSVerify) {
    warnings.push(
      `cluster '${config.name}': TLS verification of the API server is DISABLED (insecureSkipTLSVerify); anyone on the network path can impersonate it`,
    )
  }
  const tls: ConnectionOptions = {
    ...(resolved.ca ? { ca: resolved.ca } : {}),
    ...(resolved.clientCert
      ? { cert: resolved.clientCert.cert, key: resolved.clientCert.key }
      : {}),
    rejectUnauthorized: !resolved.insecureSkipTLSVerify,
    // SNI carries host names only (RFC 6066); for an IP the certificate's IP SAN is checked.
    ...(isIP(resolved.server.hostname) ? {} : { servername: resolved.server.hostname }),
  }
  const newAgent = (): Agent =>
    new Agent({
      connect: {
        ...(resolved.ca ? { ca: resolved.ca } : {}),
        ...(resolved.clientCert
          ? { cert: resolved.clientCert.cert, key: resolved.clientCert.key }
          : {}),
        rejectUnauthorized: !resolved.insecureSkipTLSVerify,
        ...(isIP(resolved.server.hostname) ? {} : { servername: resolved.server.hostname }),
        timeout: config.upstreamTimeouts.connectMs,
      },
      // HTTP/1.1 upstream: upgrades require it, and undici's allowH2 default changes across majors.
      allowH2: false,
      keepAliveTimeout: 30_000,
      connections: null,
      pipelining: 1,
    })
  const agent = newAgent()
  const streams = newAgent()

  const minted = new Map<string, MintedToken>()
  const minting = new Map<string, Promise<MintedToken>>()

  // serviceAccountToken forwarding: a short-lived token of the mapped ServiceAccount from the
  // TokenRequest API, reused until most of its lifetime is spent.
  const mint = async (sa: { namespace: string; name: string }): Promise<MintedToken> => {
    const own = resolved.token?.()
    const res = await request(
      new URL(
        `/api/v1/namespaces/${encodeURIComponent(sa.namespace)}/serviceaccounts/${encodeURIComponent(sa.name)}/token`,
        resolved.server,
      ),
      {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(own ? { authorization: `Bearer ${own}` } : {}),
        },
        body: JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: config.forwarding.tokenExpirationSeconds },
        }),
      },
    )
    const text = await res.body.text()
    if (res.statusCode !== 201 && res.statusCode !== 200) {
      throw new GatewayError(
        'GW_UPSTREAM_CREDENTIAL',
        `Gatehouse could not obtain a token for cluster '${config.name}'`,
        {
          detail: `TokenRequest for ${sa.namespace}/${sa.name} answered ${res.statusCode}: ${text.slice(0, 300)}`,
        },
      )
    }
    const body = JSON.parse(text) as { status: { token: string; expirationTimestamp: string } }
    const expires = Date.parse(body.status.expirationTimestamp)
    const issued = now()
    return { token: body.status.token, refreshAt: issued + (expires - issued) * 0.8 }
  }

  return {
    name: config.name,
    config,
    server: resolved.server,
    agent,
    streams,
    poolStats: () => ({ requests: countsOf(agent), streams: countsOf(streams) }),
    tls,
    warnings,
    async serviceAccountAuthorization(sa) {
      const key = `${sa.namespace}/${sa.name}`
      let token = minted.get(key)
      if (!token || now() >= token.refreshAt) {
        let pending = minting.get(key)
        if (!pending) {
          pending = mint(sa).finally(() => minting.delete(key))
          minting.set(key, pending)
        }
        token = await pending
        minted.set(key, token)
      }
      return `Bearer ${token.token}`
    },
    async authorization() {
      if (config.forwarding.mode === 'serviceAccountToken') {
        const sa = config.forwarding.serviceAccount
        if (!sa)
          throw new GatewayError(
            'GW_UPSTREAM_CREDENTIAL',
            `cluster '${config.name}' has no forwarding.serviceAccount`,
          )
        return this.serviceAccountAuthorization(sa)
      }
      const token = resolved.token?.()
      return token ? `Bearer ${token}` : undefined
    },
    ownAuthorization() {
      const token = resolved.token?.()
      return token ? `Bearer ${token}` : undefined
    },
    async close() {
      await Promise.all([agent.close(), streams.close()])
    },
  }
}
