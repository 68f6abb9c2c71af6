// The gateway's configuration: one schema, the TypeScript type derived from it, unknown keys
// rejected, units in names. Secrets are never inline: they come from files or environment variables.
import { z } from 'zod'
import { authnConfigSchema } from '../authn/index.ts'
import { maskingSchema } from '../masking/config.ts'
import { filePath } from '../schema/fields.ts'
import { subjectSchema } from '../policy/schema.ts'
import { exactlyOneOf } from '../schema/one-of.ts'

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
    .prefault({}),
  upstreamTimeouts: z
    .strictObject({
      connectMs: z.number().int().positive().default(10_000),
      /** Time to the response headers of ordinary requests (watches and log follows answer at once). */
      headersMs: z.number().int().positive().default(60_000),
    })
    .prefault({}),
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
  /**
   * A request body that sends nothing for this long is refused with 408 (a declared body that
   * never arrives must not hold a request forever). Watches and sessions have no body and no
   * lifetime limit.
   */
  requestBodyIdleMs: z.number().int().min(100).default(30_000),
  /**
   * A client that reads nothing of its response for this long (its connection or HTTP/2 stream
   * full) is cut off, so a stalled reader cannot pin memory and an upstream connection.
   */
  sendTimeoutMs: z.number().int().min(100).default(60_000),
  /**
   * Concurrency bounds, checked after authentication: per identity, and for the whole process.
   * Streams are watches, log follows and other long-running requests; requests are the rest.
   * Past a bound the request is refused with 429 and Retry-After (`/gatehouse/readyz` reports
   * 503 while the process is at a global bound).
   */
  concurrency: z
    .strictObject({
      perIdentityRequests: z.number().int().min(1).default(100),
      perIdentityStreams: z.number().int().min(1).default(1000),
      requests: z.number().int().min(1).default(2000),
      streams: z.number().int().min(1).default(8000),
    })
    .prefault({}),
})

export const policiesSchema = z.strictObject({
  /** Policy files and folders (YAML documents of kind Policy). None: every request is denied. */
  paths: z.array(filePath).default([]),
  /** How often files are checked for changes; 0 disables reloading. */
  watchIntervalMs: z.number().int().min(0).default(2000),
})

export const auditStoreSchema = exactlyOneOf({
  /** Embedded store; path defaults to <dataDir>/audit.db. */
  sqlite: z.strictObject({ path: filePath.optional() }),
  postgres: z
    .strictObject({
      /** Without a password only; use urlFile or urlEnv when the URL carries one. */
      url: z
        .string()
        .startsWith('postgres', 'expected a postgres:// or postgresql:// URL')
        .optional(),
      urlFile: filePath.optional(),
      urlEnv: z.string().min(1).optional(),
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case SQL identifier')
        .default('gatehouse'),
    })
    .refine(
      (p) => [p.url, p.urlFile, p.urlEnv].filter((v) => v !== undefined).length === 1,
      'expected exactly one of url, urlFile, urlEnv',
    ),
})

export const auditJournalSchema = z.strictObject({
  /**
   * true (default): a forwarded request's record is on disk (<dataDir>/audit-journal) before the
   * request is forwarded. false: records live in memory until written, so a crash loses the
   * last moments of them (docs/audit.md).
   */
  enabled: z.boolean().default(true),
  /** Each group of appends on disk (O_DSYNC) before forwarding: survives a power loss too. */
  fsync: z.boolean().default(true),
  maxSegmentBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .default(16 * 1024 * 1024),
})

export const auditRefusalsSchema = z.strictObject({
  /** The window over which refusals are counted per source address (an IPv6 /64). */
  windowSeconds: z.number().int().min(1).max(3600).default(10),
  /** Refusals from one source recorded one by one per window; the rest in one counted summary. */
  recordsPerSource: z.number().int().min(0).default(20),
  /** Refusals recorded one by one per window across all sources (the store's worst case). */
  maxRecordsPerWindow: z.number().int().min(0).default(200),
  /** Refusals per window after which a source gets 429 until the window ends; 0: no limit. */
  limitPerSource: z.number().int().min(0).default(200),
  /** A refusal's request target and header values are kept up to this many characters (then a hash). */
  maxFieldChars: z.number().int().min(80).max(8192).default(512),
})

export const auditSchema = z.strictObject({
  store: auditStoreSchema.prefault({ sqlite: {} }),
  journal: auditJournalSchema.prefault({}),
  refusals: auditRefusalsSchema.prefault({}),
  /** Records held in memory while the store is slow or down; then onStoreFailure applies. */
  maxBufferedRecords: z.number().int().min(100).default(10_000),
  batchSize: z.number().int().min(1).max(5000).default(500),
  flushIntervalMs: z.number().int().min(1).default(100),
  /** refuseRequests: fail closed with 503 once the buffer is full (AU-5). dropRecords: keep serving. */
  onStoreFailure: z.enum(['refuseRequests', 'dropRecords']).default('refuseRequests'),
  /** Records older than this are removed by a background job; 0 keeps them forever. */
  retentionDays: z.number().min(0).default(90),
  /** Longest request or response body kept in a record (bodies are kept per policy audit level). */
  maxBodyBytes: z
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
})

export const sessionsSchema = z.strictObject({
  /**
   * false: exec, attach and port-forward are relayed byte for byte without a session record,
   * recording, command limits or kill (a loud warning at start and in /readyz). For benchmarks
   * and for clusters where another layer records sessions; never the default.
   */
  record: z.boolean().default(true),
  /** Where recordings are kept; default <dataDir>/recordings. */
  recordings: z
    .strictObject({
      local: z.strictObject({ dir: z.string().min(1).optional() }),
    })
    .prefault({ local: {} }),
  /** Defaults for every session; a policy rule's `session` fields override them. */
  maxRecordingBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024 * 1024),
  onRecordingLimit: z.enum(['terminate', 'stopRecording']).default('terminate'),
  /** Mask secrets and regulated values (cards, keys, tokens...) in recordings before writing. */
  maskRecordings: z.boolean().default(true),
  recordStdin: z.enum(['always', 'nonInteractive', 'never']).default('always'),
  /**
   * exec, attach and port-forward sessions one identity may have open at once on one replica;
   * more are refused with 429 and Retry-After. 0: no bound.
   */
  maxPerIdentity: z.number().int().min(0).default(64),
  /** Seconds; 0: no limit. */
  maxDurationSeconds: z.number().int().min(0).default(0),
  idleTimeoutSeconds: z.number().int().min(0).default(0),
  portForwardCaptureBytes: z
    .number()
    .int()
    .min(0)
    .max(1024 * 1024)
    .default(0),
})

export const adminSchema = z.strictObject({
  /** A separate TLS listener for the admin API (never the data-path port). */
  listen: z.strictObject({
    address: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8444),
  }),
  /** Identities allowed to use the admin API (same matchers as policy subjects). */
  subjects: z.array(subjectSchema).min(1, 'expected at least one admin subject'),
})

/** Just-in-time approvals (policy rules with action approve): where people approve, who may. */
export const approvalsSchema = z.strictObject({
  /** The admin listener's URL as approvers reach it, for links in messages (default: its own). */
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Members may approve alone (quorum ignored); such approvals are flagged and notified loudly. */
  breakGlass: z.array(subjectSchema).min(1).optional(),
  /** Identities that can never approve, beyond CI and service accounts (always refused). */
  nonHuman: z.array(subjectSchema).optional(),
  /**
   * Where approvers' bearer tokens (admin API, `gatehouse approvals approve`) may come from: the
   * approvers' identity provider. The web login's issuer is always one of them.
   */
  approverLogin: z
    .strictObject({
      issuers: z
        .array(z.url({ protocol: /^https$/, error: 'expected an https:// issuer URL' }))
        .default([]),
      /** Static-token identities may decide: local development and tests only. */
      insecureStaticTokens: z.boolean().default(false),
    })
    .optional(),
  /** Pending approvals one identity may have at once; more are refused with 429. */
  maxPendingPerIdentity: z.number().int().min(1).max(10_000).default(20),
  /** How often pending approvals are checked for decisions on other replicas and for expiry. */
  pollIntervalMs: z.number().int().min(100).default(2000),
  /** The approvers' web page on the admin listener. */
  web: z
    .strictObject({
      /** OIDC login (authorization code + PKCE) against the approvers' identity provider. */
      oidc: z
        .strictObject({
          issuer: z.url({ protocol: /^https$/, error: 'expected an https:// issuer URL' }),
          caFile: filePath.optional(),
          clientId: z.string().min(1),
          /** Confidential clients only; public clients rely on PKCE alone. */
          clientSecretFile: filePath.optional(),
          scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email', 'groups']),
          usernameClaim: z.string().min(1).default('email'),
          usernamePrefix: z.string().default(''),
          groupsClaim: z.string().min(1).default('groups'),
          groupsPrefix: z.string().default(''),
        })
        .optional(),
      /** A form that logs in as any name: local development only, never in production. */
      insecureDevLogin: z.boolean().default(false),
      /**
       * How long a sign-in lasts (at most 12 h): a person removed from the approvers' group at
       * the identity provider keeps their groups until then, unless the provider gave a refresh
       * token, which is used to re-read the groups before every decision.
       */
      sessionTtlSeconds: z
        .number()
        .int()
        .min(60)
        .max(12 * 3600)
        .default(3600),
    })
    .optional(),
  /** Who is told about new requests and decisions (never blocking the data path). */
  notifications: z
    .strictObject({
      /** JSON POSTs signed with HMAC-SHA256 (header X-Gatehouse-Signature: sha256=<hex>). */
      webhooks: z
        .array(
          z.strictObject({
            url: z.url({ protocol: /^https?$/ }),
            secretFile: filePath,
            caFile: filePath.optional(),
          }),
        )
        .default([]),
      /** Slack-compatible incoming webhooks: a text message with a link to the approval page. */
      slack: z
        .array(
          z.strictObject({ url: z.url({ protocol: /^https?$/ }), caFile: filePath.optional() }),
        )
        .default([]),
      maxAttempts: z.number().int().min(1).max(20).default(5),
      initialBackoffMs: z.number().int().min(10).default(500),
    })
    .optional(),
})

export { maskingSchema } from '../masking/config.ts'

export const gatewayConfigSchema = z
  .strictObject({
    apiVersion: z.literal('gatehouse.dev/v1alpha1'),
    kind: z.literal('GatewayConfig'),
    dataDir: z.string().default('.gatehouse'),
    listen: listenerSchema.prefault({}),
    authentication: authnConfigSchema,
    clusters: z.array(clusterSchema).min(1, 'expected at least one cluster'),
    limits: limitsSchema.prefault({}),
    policies: policiesSchema.prefault({}),
    audit: auditSchema.prefault({}),
    sessions: sessionsSchema.prefault({}),
    masking: maskingSchema.prefault({}),
    admin: adminSchema.optional(),
    approvals: approvalsSchema.prefault({}),
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
export type AuditConfig = z.infer<typeof auditSchema>
export type SessionsConfig = z.infer<typeof sessionsSchema>
export type AdminConfig = z.infer<typeof adminSchema>
export type ApprovalsConfig = z.infer<typeof approvalsSchema>
