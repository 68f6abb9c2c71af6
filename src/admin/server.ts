// The admin API: a separate TLS listener (never the data-path port), for people and tools that
// investigate: audit queries today, approvals and sessions later. Callers authenticate with the
// same authenticators as the data path and must match `admin.subjects`.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Authenticator } from '../authn/index.ts'
import { auditQuerySchema, type AuditRepository } from '../audit/index.ts'
import type { GatewayConfig } from '../config/index.ts'
import { ensureLocalServingMaterial } from '../http/local-ca.ts'
import type { Logger } from '../observability/logger.ts'
import { subjectsMatcher, type PolicySource } from '../policy/index.ts'
import type { SessionManager } from '../sessions/manager.ts'
import { sessionQuerySchema, type SessionQuery } from '../sessions/record.ts'
import type { SessionRepository } from '../sessions/repository.ts'
import type { ApprovalService } from '../approval/service.ts'
import { handleApprovalsApi } from './approvals-api.ts'
import { createApprovalsWeb } from './web.ts'
import { decodeSegment, queryFromParams, send } from './http.ts'

export interface AdminListener {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Query string → audit query; throws a message naming the bad parameter. */
export function auditQueryFromParams(
  params: URLSearchParams,
): ReturnType<typeof auditQuerySchema.parse> {
  return queryFromParams(
    params,
    ['identity', 'cluster', 'namespace', 'verb', 'resource', 'decision'],
    auditQuerySchema,
  )
}

/** Query string → session query; throws a message naming the bad parameter. */
export function sessionQueryFromParams(params: URLSearchParams): SessionQuery {
  return queryFromParams(
    params,
    ['identity', 'cluster', 'namespace', 'pod', 'kind', 'state', 'replica'],
    sessionQuerySchema,
  )
}

export async function startAdminListener(
  config: GatewayConfig,
  deps: {
    authenticator: Authenticator
    /** Where audit records and session records are read. */
    store: { audit: AuditRepository; sessions: SessionRepository }
    policies: PolicySource
    logger: Logger
    sessions?: SessionManager
    approvals?: ApprovalService
  },
): Promise<AdminListener | undefined> {
  const admin = config.admin
  if (!admin) return undefined
  const isAdmin = subjectsMatcher(admin.subjects)
  const material = config.listen.tls
    ? {
        certPem: readFileSync(config.listen.tls.certFile, 'utf8'),
        keyPem: readFileSync(config.listen.tls.keyFile, 'utf8'),
      }
    : ensureLocalServingMaterial(config.dataDir, config.listen.hostnames)

  const web = deps.approvals
    ? createApprovalsWeb({
        config: config.approvals,
        approvals: deps.approvals,
        isAdmin,
        logger: deps.logger,
      })
    : undefined

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'https://admin')
    } catch {
      return send(res, 400, { error: 'the request target is not a valid URL path' })
    }
    if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' })
    // The approvals web page authenticates people with its own login and session cookie.
    if (!url.pathname.startsWith('/api/') && (await web?.handle(req, res, url))) return
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    const result = auth
      ? await deps.authenticator.authenticate({ bearerToken: auth[1]! })
      : undefined
    if (!result || result.outcome !== 'authenticated') {
      res.setHeader('www-authenticate', 'Bearer realm="gatehouse-admin"')
      return send(res, 401, { error: 'Unauthorized' })
    }
    const who = result.identity
    if (url.pathname.startsWith('/api/v1/approvals') && deps.approvals)
      return handleApprovalsApi(req, res, url, {
        who,
        isAdmin: isAdmin(who),
        approvals: deps.approvals,
        config: config.approvals,
      })
    if (!isAdmin(who)) {
      deps.logger.warn({ identity: who.name, path: url.pathname }, 'admin API refused')
      return send(res, 403, { error: `${who.name} is not an admin (admin.subjects)` })
    }
    const kill = /^\/api\/v1\/sessions\/([^/]+)\/kill$/.exec(url.pathname)
    if (kill) {
      if (req.method !== 'POST') return send(res, 405, { error: 'use POST to kill a session' })
      const id = decodeSegment(kill[1]!)
      if (id === undefined) return send(res, 400, { error: 'malformed percent-encoding' })
      if (!deps.sessions)
        return send(res, 404, { error: 'session recording is off (sessions.record: false)' })
      const r = await deps.sessions.killAnywhere(id, who.name)
      if ('killed' in r) {
        deps.logger.warn(
          { session: id, by: who.name, via: r.killed },
          'session killed by an administrator',
        )
        return send(res, 202, { id, killed: true, by: who.name, via: r.killed })
      }
      if (r.error === 'not-found') return send(res, 404, { error: `no session ${id}` })
      if (r.error === 'ended')
        return send(res, 409, { error: `session ${id} already ended (${r.session!.state})` })
      return send(res, 409, {
        error: `session ${id} is live on another replica (${r.session!.replica}); send the kill to that replica's admin API`,
      })
    }
    if (req.method !== 'GET') return send(res, 405, { error: 'only GET is supported' })
    const sm = /^\/api\/v1\/sessions(?:\/([^/]+)(\/recording)?)?$/.exec(url.pathname)
    if (sm?.[1]) {
      const id = decodeSegment(sm[1])
      if (id === undefined) return send(res, 400, { error: 'malformed percent-encoding' })
      const live = deps.sessions?.live().find((x) => x.id === id)
      const s = live ?? (await deps.store.sessions.getSession(id))
      if (!s) return send(res, 404, { error: `no session ${id}` })
      if (!sm[2]) return send(res, 200, s)
      if (!s.recording || !deps.sessions)
        return send(res, 404, { error: `session ${id} has no recording` })
      const stream = deps.sessions.recordings.open(s.recording.key)
      stream.once('error', () => {
        if (!res.headersSent) send(res, 404, { error: `the recording of session ${id} is missing` })
        else res.destroy()
      })
      stream.once('open', () => {
        res.writeHead(200, { 'content-type': 'application/gzip', 'cache-control': 'no-store' })
        stream.pipe(res)
      })
      return
    }
    if (sm) {
      let q
      try {
        q = sessionQueryFromParams(url.searchParams)
      } catch (e) {
        return send(res, 400, { error: (e as Error).message })
      }
      return send(res, 200, { items: await deps.store.sessions.querySessions(q) })
    }
    const m = /^\/api\/v1\/audit\/records(?:\/([^/]+))?$/.exec(url.pathname)
    if (m?.[1]) {
      const id = decodeSegment(m[1])
      if (id === undefined) return send(res, 400, { error: 'malformed percent-encoding' })
      const record = await deps.store.audit.get(id)
      return record ? send(res, 200, record) : send(res, 404, { error: `no audit record ${m[1]}` })
    }
    if (m) {
      let q
      try {
        q = auditQueryFromParams(url.searchParams)
      } catch (e) {
        return send(res, 400, { error: (e as Error).message })
      }
      return send(res, 200, { items: await deps.store.audit.query(q) })
    }
    if (url.pathname === '/api/v1/policies/status') return send(res, 200, deps.policies.status)
    return send(res, 404, { error: `no such endpoint ${url.pathname}` })
  }

  const server: Server = createServer(
    { cert: material.certPem, key: material.keyPem },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        deps.logger.error({ error: String(e) }, 'admin API request failed')
        if (!res.headersSent) send(res, 500, { error: 'internal error; see the Gatehouse log' })
        else res.destroy()
      })
    },
  )
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(admin.listen.port, admin.listen.address, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `https://${admin.listen.address === '0.0.0.0' ? '127.0.0.1' : admin.listen.address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
