// The Policy document: who (subjects) may do what (rules), with which outcome (action and
// obligations). Kubernetes-style, strict (unknown fields are errors: a misspelt `namespace:` in a
// deny rule would otherwise silently widen it), and validated before anything is compiled.
import { z } from 'zod'
import { exactlyOneOf } from '../schema/one-of.ts'

export const POLICY_API_VERSION = 'gatehouse.dev/v1alpha1'

/** Verbs a rule may name: the API server's resource verbs and the HTTP verbs of non-resource paths. */
export const KNOWN_VERBS = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
  'proxy',
  'post',
  'put',
  'head',
  'options',
] as const

/**
 * Built-in kinds in the singular, which rules must name in the plural like RBAC does: a deny rule
 * on `secret` would never match anything, so it is an error, not a silent hole.
 */
const SINGULAR_RESOURCES: Record<string, string> = {
  pod: 'pods',
  secret: 'secrets',
  configmap: 'configmaps',
  deployment: 'deployments',
  namespace: 'namespaces',
  service: 'services',
  serviceaccount: 'serviceaccounts',
  statefulset: 'statefulsets',
  daemonset: 'daemonsets',
  replicaset: 'replicasets',
  job: 'jobs',
  cronjob: 'cronjobs',
  node: 'nodes',
  role: 'roles',
  rolebinding: 'rolebindings',
  clusterrole: 'clusterroles',
  clusterrolebinding: 'clusterrolebindings',
  persistentvolume: 'persistentvolumes',
  persistentvolumeclaim: 'persistentvolumeclaims',
  ingress: 'ingresses',
  event: 'events',
}

export const AUDIT_LEVELS = ['none', 'metadata', 'request', 'requestResponse'] as const
export type AuditLevel = (typeof AUDIT_LEVELS)[number]

const glob = z.string().min(1, 'expected a non-empty name or glob')

/** A resource as rules name it; singular kinds and capitals are errors, not silent non-matches. */
const resourceName = glob.superRefine((r, ctx) => {
  const base = r.split('/')[0]!
  const plural = SINGULAR_RESOURCES[base]
  if (plural)
    ctx.addIssue({
      code: 'custom',
      message: `'${r}' is a kind in the singular; rules name resources in the plural ('${r.replace(base, plural)}')`,
    })
  else if (r !== r.toLowerCase())
    ctx.addIssue({
      code: 'custom',
      message: `'${r}': resource names are lower-case plurals, as in RBAC`,
    })
})
const globs = z.array(glob).min(1, 'expected at least one entry (omit the field to match any)')

/** A claim matcher: one glob or a list of globs; arrays in the token match when any element does. */
const claimMatcher = z.union([glob, z.array(glob).min(1)])

export const subjectSchema = z
  .strictObject({
    /** The identity name (what the cluster sees), e.g. `github:octo-org/*`. */
    name: glob.optional(),
    /** Matches when any of the identity's groups matches. */
    group: glob.optional(),
    /** The token issuer URL (OIDC identities). */
    issuer: glob.optional(),
    method: z.enum(['oidc', 'tokenReview', 'mtls', 'static']).optional(),
    /** Verified token claims, by name; nested claims with dots (`ext.team`). */
    claims: z.record(z.string().min(1), claimMatcher).optional(),
  })
  .refine(
    (s) => Object.values(s).some((v) => v !== undefined),
    'a subject needs at least one of name, group, issuer, method, claims (use name: "*" for everyone)',
  )

export const forwardingSchema = exactlyOneOf({
  /** Act as this user/groups in the cluster (default: the identity's own name and groups). */
  impersonate: z.strictObject({
    user: z.string().min(1).optional(),
    groups: z.array(z.string().min(1)).optional(),
  }),
  /** Forward with a short-lived token of this ServiceAccount (TokenRequest API). */
  serviceAccount: z.strictObject({ namespace: z.string().min(1), name: z.string().min(1) }),
})

/** `90s`, `30m`, `2h` → seconds. */
const duration = z
  .string()
  .regex(/^\d+(s|m|h)$/, 'expected a duration such as 90s, 30m or 2h')
  .transform(
    (v) => Number(v.slice(0, -1)) * { s: 1, m: 60, h: 3600 }[v.slice(-1) as 's' | 'm' | 'h'],
  )
  .refine((v) => v > 0, 'expected a duration above zero')

/** What a rule adds to the sessions it allows (exec, attach, port-forward): limits and recording. */
export const sessionObligationsSchema = z.strictObject({
  /** End the session after this long (the client sees why). */
  maxDuration: duration.optional(),
  /** End the session after this long without a byte either way. */
  idleTimeout: duration.optional(),
  /** Record stdin: always, only without a TTY (the script, not keystrokes), or never. */
  recordStdin: z.enum(['always', 'nonInteractive', 'never']).optional(),
  /** The largest recording (uncompressed event bytes) of one session. */
  maxRecordingBytes: z.number().int().min(1024).optional(),
  /** At that size: end the session (fail closed, the default) or go on without recording. */
  onRecordingLimit: z.enum(['terminate', 'stopRecording']).optional(),
  /** Port-forward: keep the first N bytes of each connection, each way (0: counts only). */
  portForwardCaptureBytes: z
    .number()
    .int()
    .min(0)
    .max(1024 * 1024)
    .optional(),
})
export type SessionObligations = z.infer<typeof sessionObligationsSchema>

/**
 * What a rule's callers see of secrets and regulated values. Masking is on unless a rule (or its
 * policy) turns it off: a backup job that must restore Secrets, helm (it keeps releases in
 * Secrets). What Gatehouse records is masked whatever this says.
 */
export const maskObligationSchema = z.strictObject({
  /** false: responses, logs and exec output reach this rule's callers unmasked. */
  enabled: z.boolean().optional(),
  /** How values are replaced: a placeholder, the last four digits of cards, or a keyed hash. */
  replacement: z.enum(['placeholder', 'partial', 'hmac']).optional(),
})
export type MaskObligation = z.infer<typeof maskObligationSchema>

/**
 * An `approve` rule's approval: who may approve (the approvers' own login: groups or names),
 * how many distinct approvers, how long the request waits, how the client waits, and how long
 * (and how often) an approved request may be repeated by the same identity.
 */
export const approvalSchema = z.strictObject({
  approvers: z.array(subjectSchema).min(1, 'expected at least one approver subject'),
  /** Distinct approvers needed (a break-glass approver alone is enough). */
  quorum: z.number().int().min(1).max(10).default(1),
  /** The pending request expires after this long without a decision. */
  expiresIn: duration.default(3600),
  /** hold: the request stays open until the decision; retry: 403 at once, retry once approved. */
  wait: z.enum(['hold', 'retry']).default('hold'),
  /** How long and how often the approved request may be sent again (default: once). */
  reuse: z
    .strictObject({ window: duration.default(300), uses: z.number().int().min(1).default(1) })
    .optional(),
})
export type ApprovalObligation = z.infer<typeof approvalSchema>

/** exec and attach requests: what runs (argv as one command line), where, and how. */
export const execMatchSchema = z.strictObject({
  /** Globs over the command line: argv joined by single spaces (`pg_dump *`, `*sh`). */
  commands: globs.optional(),
  containers: globs.optional(),
  tty: z.boolean().optional(),
  stdin: z.boolean().optional(),
})

export const ruleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$/,
        'expected a name (letters, digits, -_.)',
      ),
    /** allow, deny (the block outcome), or approve (allow once people approved; `approval`). */
    action: z.enum(['allow', 'deny', 'approve']),
    /** Shown to the caller when the rule denies. */
    message: z.string().max(500).optional(),
    verbs: z
      .array(
        z.enum([...KNOWN_VERBS, '*'], {
          error: (issue) =>
            `unknown verb ${JSON.stringify(issue.input)}; expected one of ${KNOWN_VERBS.join(', ')} or "*"`,
        }),
      )
      .min(1, 'expected at least one verb ("*" for any)'),
    clusters: globs.optional(),
    apiGroups: z.array(z.string()).min(1).optional(),
    // `pods`, `pods/log`, `pods/*` (all subresources), `*/scale`, `*`. Plural, as in RBAC.
    resources: z.array(resourceName).min(1).optional(),
    namespaces: globs.optional(),
    names: globs.optional(),
    /** Paths of non-resource requests (`/healthz`, `/version`, `/metrics*`). */
    nonResourceURLs: z
      .array(z.string().regex(/^\//, 'expected a path starting with /'))
      .min(1)
      .optional(),
    /**
     * deny and approve rules with namespaces or names: a list or watch that returns what the
     * rule names among other objects is refused (deny, the default) or answered without those
     * objects, with a Warning (filter).
     */
    collections: z.enum(['deny', 'filter']).optional(),
    /** A CEL expression over request, identity and object; the rule applies only when it is true. */
    when: z.string().min(1).max(4096).optional(),
    /** How much of the request goes into Gatehouse's audit record. */
    audit: z.enum(AUDIT_LEVELS).optional(),
    /** Only exec/attach requests whose command, container, tty and stdin match. */
    exec: execMatchSchema.optional(),
    /** Limits and recording for the sessions this rule allows. */
    session: sessionObligationsSchema.optional(),
    /** Masking of what this rule's callers receive (default: masked). */
    mask: maskObligationSchema.optional(),
    /** For action approve: approvers, quorum, expiry, wait mode, reuse. */
    approval: approvalSchema.optional(),
  })
  .superRefine((rule, ctx) => {
    if ((rule.action === 'approve') !== (rule.approval !== undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['approval'],
        message:
          rule.action === 'approve'
            ? 'an approve rule needs approval: (approvers at least)'
            : 'approval: is only for rules with action approve',
      })
    if (rule.collections !== undefined && rule.action === 'allow')
      ctx.addIssue({
        code: 'custom',
        path: ['collections'],
        message:
          'collections: is for deny and approve rules (an allow rule never matches a list across namespaces)',
      })
    else if (rule.collections === 'filter' && !rule.namespaces && !rule.names)
      ctx.addIssue({
        code: 'custom',
        path: ['collections'],
        message:
          'collections: filter needs namespaces or names: they say which objects are taken out',
      })
    const resourceFields = ['apiGroups', 'resources', 'namespaces', 'names'] as const
    const used = resourceFields.filter((f) => rule[f] !== undefined)
    if (rule.nonResourceURLs && used.length)
      ctx.addIssue({
        code: 'custom',
        path: ['nonResourceURLs'],
        message: `nonResourceURLs cannot be combined with ${used.join(', ')}: a request is either a resource request or not`,
      })
  })

export const policySchema = z.strictObject({
  apiVersion: z.literal(POLICY_API_VERSION, `expected apiVersion: ${POLICY_API_VERSION}`),
  kind: z.literal('Policy'),
  metadata: z.strictObject({
    name: z
      .string()
      .regex(
        /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/,
        'expected a DNS-style name (lower-case letters, digits, - and .)',
      ),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z
    .strictObject({
      description: z.string().optional(),
      /** shadow: decide and record, warn, but never change the outcome. */
      mode: z.enum(['enforce', 'shadow']).default('enforce'),
      subjects: z.array(subjectSchema).min(1, 'expected at least one subject'),
      /** Who the cluster sees for requests this policy allows (least privilege, stated once). */
      forwarding: forwardingSchema.optional(),
      /** Default audit level of this policy's rules. */
      audit: z.enum(AUDIT_LEVELS).optional(),
      /** Default session limits and recording of this policy's rules (a rule's fields win). */
      session: sessionObligationsSchema.optional(),
      /** Default masking of this policy's rules (a rule's fields win). */
      mask: maskObligationSchema.optional(),
      rules: z.array(ruleSchema).min(1, 'expected at least one rule'),
    })
    .superRefine((spec, ctx) => {
      const seen = new Set<string>()
      spec.rules.forEach((r, i) => {
        if (seen.has(r.name))
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'name'],
            message: `rule name '${r.name}' is used twice in this policy`,
          })
        seen.add(r.name)
      })
    }),
})

export type PolicyDocument = z.infer<typeof policySchema>
export type PolicyRule = z.infer<typeof ruleSchema>
export type PolicySubject = z.infer<typeof subjectSchema>
export type ForwardingMapping = z.infer<typeof forwardingSchema>
