// startServer(config): the running product — logger, policies, database, authenticators,
// gateway, the TLS listener, and the admin listener when configured.
import { join } from 'node:path'
import { startAdminListener, type AdminListener } from './admin/server.ts'
import { AuditJournal, AuditWriter } from './audit/index.ts'
import { createAuthenticatorFromConfig } from './authn/index.ts'
import type { GatewayConfig } from './config/index.ts'
import { buildGateway, createClusters, type Gateway } from './gateway.ts'
import { listen, type Listener } from './http/server.ts'
import { createLogger, type Logger } from './observability/logger.ts'
import { PolicySource } from './policy/index.ts'
import { clusterTokenReviewer } from './upstream/token-review.ts'
import { recordingStoreFromConfig } from './sessions/recording.ts'
import { replicaName, SessionManager } from './sessions/manager.ts'
import { Masking } from './masking/profile.ts'
import { ApprovalService } from './approval/service.ts'
import { approverPolicyOf } from './approval/decide.ts'
import { createNotifier } from './approval/notify.ts'
import { startRetention } from './store/index.ts'
import { storesFromConfig, type Stores } from './stores.ts'

export interface RunningServer {
  readonly gateway: Gateway
  readonly listener: Listener
  readonly admin: AdminListener | undefined
  readonly logger: Logger
  readonly policies: PolicySource
  /** The database and its repositories (closed by `close`, after the audit writer's flush). */
  readonly stores: Stores
  readonly audit: AuditWriter
  readonly sessions: SessionManager
  readonly approvals: ApprovalService
  close(): Promise<void>
}

export async function startServer(
  config: GatewayConfig,
  opts: { logger?: Logger } = {},
): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel)
  // Broken policies or an unusable audit store stop the start: never serve without either.
  const policies = new PolicySource(config.policies.paths, {
    logger,
    watchIntervalMs: config.policies.watchIntervalMs,
  })
  const stores = storesFromConfig(config.audit, config.dataDir)
  try {
    await stores.migrate()
  } catch (e) {
    await stores.close().catch(() => undefined)
    policies.close()
    throw new Error(
      `audit store ${stores.database.location} is not usable: ${(e as Error).message}`,
      {
        cause: e,
      },
    )
  }
  // Before any request: what a crashed run forwarded without recording its end is recovered.
  const journal = config.audit.journal.enabled
    ? AuditJournal.open({
        dir: join(config.dataDir, 'audit-journal'),
        fsync: config.audit.journal.fsync,
        maxSegmentBytes: config.audit.journal.maxSegmentBytes,
        logger,
      })
    : undefined
  const audit = new AuditWriter(stores.audit, {
    maxBufferedRecords: config.audit.maxBufferedRecords,
    batchSize: config.audit.batchSize,
    flushIntervalMs: config.audit.flushIntervalMs,
    onStoreFailure: config.audit.onStoreFailure,
    spoolDir: join(config.dataDir, 'audit-spool'),
    ...(journal ? { journal } : {}),
    logger,
  })
  audit.recoverSpool()
  audit.recoverJournal()
  const masking = new Masking(config.masking, config.dataDir)
  const sessions = new SessionManager({
    store: stores.sessions,
    recordings: recordingStoreFromConfig(config),
    defaults: config.sessions,
    logger,
    replica: replicaName(config.dataDir),
    masking,
  })
  await sessions.listenForKills()
  const stale = await sessions.recover()
  if (stale)
    logger.warn({ sessions: stale }, 'sessions left live by the last run are marked incomplete')
  const retention = startRetention(stores.expiring, config.audit.retentionDays, {
    logger,
    recordings: sessions.recordings,
  })

  // The admin listener starts after the data path; until then approval links have no base URL.
  const adminUrl: { current?: string } = {}
  const approvals = new ApprovalService({
    store: stores.approvals,
    audit,
    logger,
    config: config.approvals,
    approveUrl: () => config.approvals.publicUrl ?? adminUrl.current,
    approvers: approverPolicyOf(config),
  })
  if (config.approvals.notifications)
    approvals.onEvent(
      createNotifier(config.approvals.notifications, {
        logger,
        link: (id) => approvals.where(id),
        onDelivery: (event, a, d) => approvals.notified(a, event, d),
      }),
    )
  await approvals.start()

  const clusters = createClusters(config)
  const authn = await createAuthenticatorFromConfig(config.authentication, {
    logger,
    tokenReviewer: clusterTokenReviewer(clusters),
    defaultCluster: (config.clusters.find((c) => c.default) ?? config.clusters[0])?.name,
  })
  const gateway = buildGateway(config, {
    authenticator: authn.authenticator,
    logger,
    clusters,
    policies,
    audit,
    masking,
    ...(config.sessions.record ? { sessions } : {}),
    approvals,
  })
  for (const w of [...authn.warnings, ...gateway.currentWarnings()]) logger.warn(w)
  const listener = await listen(config, gateway)
  const admin = await startAdminListener(config, {
    authenticator: authn.authenticator,
    store: stores,
    policies,
    sessions,
    approvals,
    logger,
  })
  if (admin) adminUrl.current = admin.url
  logger.info(
    {
      url: listener.url,
      admin: admin?.url,
      clusters: [...gateway.clusters.keys()],
      policies: policies.status.policies,
      auditStore: stores.database.location,
    },
    'gatehouse is serving',
  )
  return {
    gateway,
    listener,
    admin,
    logger,
    policies,
    stores,
    audit,
    sessions,
    approvals,
    async close() {
      await listener.close()
      await approvals.close()
      await admin?.close()
      retention.stop()
      policies.close()
      await sessions.close()
      // Every request has ended: its record is queued. Flush, or spool what the store refuses.
      await audit.close(config.limits.shutdownGraceMs)
      await stores.close().catch(() => undefined)
    },
  }
}
