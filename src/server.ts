// startServer(config): the running product — logger, authenticators, gateway, TLS listener.
import type { GatewayConfig } from './config/index.ts'
import { buildGateway, createClusters, type Gateway } from './gateway.ts'
import { clusterTokenReviewer } from './upstream/token-review.ts'
import { listen, type Listener } from './http/server.ts'
import { createAuthenticatorFromConfig } from './authn/index.ts'
import { createLogger, type Logger } from './observability/logger.ts'

export interface RunningServer {
  readonly gateway: Gateway
  readonly listener: Listener
  readonly logger: Logger
  close(): Promise<void>
}

export async function startServer(
  config: GatewayConfig,
  opts: { logger?: Logger } = {},
): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel)
  const clusters = createClusters(config)
  const authn = await createAuthenticatorFromConfig(config.authentication, {
    logger,
    tokenReviewer: clusterTokenReviewer(clusters),
  })
  const gateway = buildGateway(config, { authenticator: authn.authenticator, logger, clusters })
  for (const w of [...authn.warnings, ...gateway.warnings]) logger.warn(w)
  const listener = await listen(config, gateway)
  logger.info({ url: listener.url, clusters: [...gateway.clusters.keys()] }, 'gatehouse is serving')
  return {
    gateway,
    listener,
    logger,
    async close() {
      await listener.close()
    },
  }
}
