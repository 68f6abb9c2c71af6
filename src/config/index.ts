export { ConfigError, formatPath, loadConfig, parseConfig } from './load.ts'
export {
  clusterSchema,
  gatewayConfigSchema,
  type AdminConfig,
  type ApprovalsConfig,
  type AuditConfig,
  type SessionsConfig,
  type ClusterConfig,
  type GatewayConfig,
  type UpstreamCredentialConfig,
} from './schema.ts'
export { configJsonSchema } from './json-schema.ts'
