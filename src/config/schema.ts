// The gateway's configuration: one schema, the TypeScript type derived from it, unknown keys
// rejected, units in names. Secrets are never inline: they come from files or environment variables.
import { z } from 'zod'
import { authnConfigSchema } from '../authn/index.ts'
import { exactlyOneOf } from './one-of.ts'

const filePath = z.string().min(1, 'expected a file path')

/** How Gatehouse authenticates itself to a cluster. Exactly one source. */
export const upstreamCredentialSchema = exactlyOneOf({
  kubeconfig: z.strictObject({ path: filePath, context: z.string().optional() }),
  inCluster: z.strictObject({}),
  tokenFile: filePath,
  tokenEnv: z.string().min(1),
  clientCertificate: z.strictObject({ certFile: filePath, keyFile: filePath }),
})

export const clusterSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
      'expected a DNS label (lowercase letters, digits, -)',
    ),
  /** Serve this cluster at the root path too, not only under /clusters/<name>/. */
  default: z.boolean().default(false),
  /** The API server URL; may be omitted when the credential is a kubeconfig or in-cluster. */
  server: z.url({ protocol: /^https$/, error: 'expected an https:// URL' }).optional(),
  caFile: filePath.optional(),
  /** Disables verification of the API server's certificate. Loudly warned about; never for production. */
  insecureSkipTLSVerify: z.boolean().default(false),
  credential: upstreamCredentialSchema,
  forwarding: z
    .strictObject({
      mode: z.enum(['impersonate', 'serviceAccountToken']).default('impersonate'),
      /** For serviceAccountToken mode: the ServiceAccount whose short-lived tokens are minted. */
      serviceAccount: z.strictObject({ namespace: z.string(), name: z.string() }).optional(),
      tokenExpirationSeconds: z.number().int().min(600).max(86400).default(3600),
    })
    .default({ mode: 'impersonate', tokenExpirationSeconds: 3600 }),
  upstreamTimeouts: z
    .strictObject({
      connectMs: z.number().int().positive().default(10_000),
      /** Time to the response headers of ordinary requests (watches and log follows answer at once). */
      headersMs: z.number().int().positive().default(60_000),
    })
    .default({ connectMs: 10_000, headersMs: 60_000 }),
})

export const listenerSchema = z.strictObject({
  address: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8443),
  /** Serving certificate; without one Gatehouse creates a local CA and certificate in dataDir. */
  tls: z.strictObject({ certFile: filePath, keyFile: filePath }).optional(),
  /** Extra names for the generated serving certificate (localhost and 127.0.0.1 are always in). */
  hostnames: z.array(z.string()).default([]),
  /** CA bundle for client certificates (mTLS authentication); clients without a certificate may still use tokens. */
  clientCAFile: filePath.optional(),
  /** Offer HTTP/2 by ALPN for ordinary requests (upgrades for exec/attach/port-forward stay HTTP/1.1). */
  http2: z.boolean().default(true),
})

export const limitsSchema = z.strictObject({
  maxHeaderBytes: z
    .number()
    .int()
    .min(1024)
    .default(32 * 1024),
  maxRequestBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  /** In-flight requests finish within this bound on shutdown; watches and sessions are closed. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
})

export const gatewayConfigSchema = z
  .strictObject({
    apiVersion: z.literal('gatehouse.dev/v1alpha1'),
    kind: z.literal('GatewayConfig'),
    dataDir: z.string().default('.gatehouse'),
    listen: listenerSchema.default({
      address: '127.0.0.1',
      port: 8443,
      hostnames: [],
      http2: true,
    }),
    authentication: authnConfigSchema,
    clusters: z.array(clusterSchema).min(1, 'expected at least one cluster'),
    limits: limitsSchema.default({
      maxHeaderBytes: 32 * 1024,
      maxRequestBodyBytes: 8 * 1024 * 1024,
      shutdownGraceMs: 10_000,
    }),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  })
  .superRefine((config, ctx) => {
    // References between sections, checked once everything parsed.
    const names = config.clusters.map((c) => c.name)
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i)
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'name'],
          message: `cluster name '${name}' is used twice`,
        })
    })
    const defaults = config.clusters.flatMap((c, i) => (c.default ? [i] : []))
    if (defaults.length > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['clusters', defaults[1]!, 'default'],
        message: 'only one cluster may be the default',
      })
    config.clusters.forEach((c, i) => {
      if (c.forwarding.mode === 'serviceAccountToken' && !c.forwarding.serviceAccount) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'forwarding', 'serviceAccount'],
          message: 'required when mode is serviceAccountToken (namespace and name)',
        })
      }
    })
    config.authentication.authenticators.forEach((a, i) => {
      if (a.tokenReview && !names.includes(a.tokenReview.cluster)) {
        ctx.addIssue({
          code: 'custom',
          path: ['authentication', 'authenticators', i, 'tokenReview', 'cluster'],
          message: `no cluster named '${a.tokenReview.cluster}' (clusters: ${names.join(', ')})`,
        })
      }
    })
  })

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>
export type ClusterConfig = z.infer<typeof clusterSchema>
export type UpstreamCredentialConfig = z.infer<typeof upstreamCredentialSchema>
