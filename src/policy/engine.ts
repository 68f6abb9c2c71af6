// The policy engine: documents compiled once per reload into rules indexed by verb and resource,
// then one decision per request. Deny wins over allow; nothing matched means deny; shadow-mode
// policies are evaluated alongside and can only add a warning, never change the outcome.
import type { Identity } from '../authn/index.ts'
import { coordinatesOf, type RequestInfo } from '../kube/request-info.ts'
import {
  COVERED_VERBS,
  isClusterScoped,
  parentVerbOf,
  subresourceVerbsFor,
  type SelectorFacts,
} from '../kube/scope.ts'
import { compileCondition, ConditionError, type CelInput, type CompiledCondition } from './cel.ts'
import {
  DEFAULT_AUDIT_LEVEL,
  type Action,
  type CollectionFilter,
  type Decision,
  type DecidingRule,
} from './decision.ts'
import { compileGlob, compileGlobs, type Matcher } from './glob.ts'
import { coverageReason, describeCoverage } from './coverage.ts'
import type {
  ApprovalObligation,
  AuditLevel,
  ForwardingMapping,
  PolicyDocument,
  PolicyRule,
  PolicySubject,
  MaskObligation,
  SessionObligations,
} from './schema.ts'

/** exec and attach: what the caller asks to run (attach has no command). */
export interface ExecRequest {
  command: string[]
  container: string
  tty: boolean
  stdin: boolean
}

/** The request body of a write as conditions see it, or why it cannot be read. */
export type RequestObject = { value: unknown } | { unavailable: string }

/** What a decision is made on. `object` is decoded lazily: only conditions that read it pay. */
export interface PolicyRequest {
  cluster: string
  info: RequestInfo
  identity: Identity
  /** What the write would store (see PolicySet.objectNeeds); null for reads. */
  object?: () => RequestObject
  /** What is stored now, for update, patch and delete. */
  oldObject?: () => RequestObject
  /** A patch's body as sent (`request.patch`). */
  patch?: unknown
  userAgent?: string
  dryRun?: boolean
  /** Set for pods/exec and pods/attach. */
  exec?: ExecRequest
  /** What the request's fieldSelector pins down (metadata.name, metadata.namespace). */
  selector?: SelectorFacts
  /** The media type of a patch (`application/apply-patch+yaml`: server-side apply). */
  patchType?: string
}

/** What PolicySet.objectNeeds reports. */
export interface ObjectNeeds {
  object: boolean
  oldObject: boolean
  /** Who the cluster would see: the forwarding of the policy that would let the request through. */
  forwarding: ForwardingMapping | undefined
}

export interface CompiledPolicy {
  readonly name: string
  readonly mode: 'enforce' | 'shadow'
  readonly source: string
  readonly forwarding: ForwardingMapping | undefined
  readonly matchesIdentity: (identity: Identity) => boolean
}

interface CompiledRule {
  /** The rule as written (for explanations). */
  readonly raw: PolicyRule
  readonly order: number
  readonly policy: CompiledPolicy
  readonly policyIndex: number
  readonly name: string
  readonly action: Action
  readonly message: string | undefined
  readonly audit: AuditLevel
  /** resource: only resource requests; nonResource: only paths; any: both. */
  readonly scope: 'resource' | 'nonResource' | 'any'
  readonly cluster: Matcher
  readonly apiGroup: Matcher
  readonly resource: Matcher
  readonly namespace: Matcher | undefined
  readonly name_: Matcher | undefined
  /** The `names` globs as written (generateName can only produce some of them). */
  readonly namePatterns: readonly string[] | undefined
  /** The verbs as written ('*': every verb). */
  readonly verbs: ReadonlySet<string> | '*'
  /** deny and approve: every request verb that reads or changes what those verbs name. */
  readonly coveredVerbs: ReadonlySet<string> | '*'
  /** deny and approve: a list or watch that only partly covers the rule is filtered, not refused. */
  readonly filterCollections: boolean
  readonly path: Matcher
  readonly when: CompiledCondition | undefined
  /** The condition reads `object` (what the write would store). */
  readonly usesObject: boolean
  /** The condition reads `oldObject` (what is stored now). */
  readonly usesOldObject: boolean
  /** exec/attach matching; rules with it never match other requests. */
  readonly exec: ((e: ExecRequest) => boolean) | undefined
  readonly session: SessionObligations | undefined
  readonly mask: MaskObligation | undefined
  readonly approval: ApprovalObligation | undefined
}

function compileExecMatch(
  m: NonNullable<PolicyDocument['spec']['rules'][number]['exec']>,
): (e: ExecRequest) => boolean {
  const commands = m.commands ? compileGlobs(m.commands) : undefined
  const containers = m.containers ? compileGlobs(m.containers) : undefined
  return (e) =>
    (commands === undefined || (e.command.length > 0 && commands(e.command.join(' ')))) &&
    (containers === undefined || containers(e.container)) &&
    (m.tty === undefined || m.tty === e.tty) &&
    (m.stdin === undefined || m.stdin === e.stdin)
}

export class PolicyCompileError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid policies:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'PolicyCompileError'
    this.problems = problems
  }
}

const NON_RESOURCE = '#nonresource'

function claimValue(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path]
  let v: unknown = claims
  for (const part of path.split('.')) {
    if (!v || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

function compileSubject(s: PolicySubject): (id: Identity) => boolean {
  const checks: ((id: Identity) => boolean)[] = []
  if (s.name !== undefined) {
    const m = compileGlob(s.name)
    checks.push((id) => m(id.name))
  }
  if (s.group !== undefined) {
    const m = compileGlob(s.group)
    checks.push((id) => id.groups.some(m))
  }
  if (s.issuer !== undefined) {
    const m = compileGlob(s.issuer)
    checks.push((id) => id.issuer !== undefined && m(id.issuer))
  }
  if (s.method !== undefined) {
    const method = s.method
    checks.push((id) => id.method === method)
  }
  for (const [claim, patterns] of Object.entries(s.claims ?? {})) {
    const m = compileGlobs(Array.isArray(patterns) ? patterns : [patterns])
    checks.push((id) => {
      const v = claimValue(id.claims, claim)
      const values = Array.isArray(v) ? v : [v]
      // Only scalar claim values match; objects never do (no accidental "[object Object]").
      return values.some(
        (x) =>
          (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') &&
          m(String(x)),
      )
    })
  }
  return (id) => checks.every((c) => c(id))
}

/** Matches an identity against a list of subjects (any of them). */
export function subjectsMatcher(subjects: readonly PolicySubject[]): (id: Identity) => boolean {
  const compiled = subjects.map(compileSubject)
  return (id) => compiled.some((c) => c(id))
}

/** An immutable, compiled policy set. Evaluate as often as wanted; recompile on change. */
export class PolicySet {
  readonly policies: readonly CompiledPolicy[]
  readonly ruleCount: number
  readonly #index = new Map<string, CompiledRule[]>()
  /** Some rule's condition reads object or oldObject (else objectNeeds has nothing to do). */
  readonly #readsObjects: boolean
  /** Subject matching per identity object (authenticators cache identities per token). */
  readonly #subjectCache = new WeakMap<Identity, Uint8Array>()

  constructor(docs: readonly { doc: PolicyDocument; source: string }[]) {
    const problems: string[] = []
    const names = new Map<string, string>()
    const sorted = [...docs].sort((a, b) => (a.doc.metadata.name < b.doc.metadata.name ? -1 : 1))
    const policies: CompiledPolicy[] = []
    let order = 0
    for (const { doc, source } of sorted) {
      const name = doc.metadata.name
      const other = names.get(name)
      if (other !== undefined) {
        problems.push(`${source}: metadata.name: policy '${name}' is also defined in ${other}`)
        continue
      }
      names.set(name, source)
      const policy: CompiledPolicy = {
        name,
        mode: doc.spec.mode,
        source,
        forwarding: doc.spec.forwarding,
        matchesIdentity: subjectsMatcher(doc.spec.subjects),
      }
      const policyIndex = policies.push(policy) - 1
      doc.spec.rules.forEach((r, i) => {
        let when: CompiledCondition | undefined
        if (r.when !== undefined) {
          try {
            when = compileCondition(r.when)
          } catch (e) {
            if (!(e instanceof ConditionError)) throw e
            problems.push(`${source}: policy '${name}': spec.rules[${i}].when: ${e.message}`)
            return
          }
        }
        const hasResourceFields =
          r.apiGroups !== undefined ||
          r.resources !== undefined ||
          r.namespaces !== undefined ||
          r.names !== undefined
        const rule: CompiledRule = {
          raw: r,
          order: order++,
          policy,
          policyIndex,
          name: r.name,
          action: r.action,
          message: r.message,
          audit: r.audit ?? doc.spec.audit ?? DEFAULT_AUDIT_LEVEL,
          scope: r.nonResourceURLs ? 'nonResource' : hasResourceFields ? 'resource' : 'any',
          cluster: compileGlobs(r.clusters),
          apiGroup: compileGlobs(r.apiGroups),
          resource: compileGlobs(r.resources),
          namespace: r.namespaces ? compileGlobs(r.namespaces) : undefined,
          name_: r.names ? compileGlobs(r.names) : undefined,
          namePatterns: r.names,
          verbs: r.verbs.includes('*') ? '*' : new Set(r.verbs),
          coveredVerbs: r.verbs.includes('*')
            ? '*'
            : new Set(r.verbs.flatMap((v) => COVERED_VERBS[v] ?? [v])),
          filterCollections: r.collections === 'filter',
          path: compileGlobs(r.nonResourceURLs),
          when,
          usesObject: r.when !== undefined && /\bobject\b/.test(r.when),
          usesOldObject: r.when !== undefined && /\boldObject\b/.test(r.when),
          exec: r.exec ? compileExecMatch(r.exec) : undefined,
          session:
            r.session || doc.spec.session ? { ...doc.spec.session, ...r.session } : undefined,
          mask: r.mask || doc.spec.mask ? { ...doc.spec.mask, ...r.mask } : undefined,
          approval: r.approval,
        }
        const verbs = indexVerbs(rule)
        const bases =
          rule.scope === 'nonResource'
            ? [NON_RESOURCE]
            : rule.scope === 'any' || !r.resources
              ? ['*']
              : r.resources.some((x) => /[*?]/.test(x.split('/')[0]!))
                ? ['*']
                : [...new Set(r.resources.map((x) => x.split('/')[0]!))]
        for (const v of verbs)
          for (const b of bases) {
            const key = `${v}|${b}`
            const list = this.#index.get(key) ?? []
            list.push(rule)
            this.#index.set(key, list)
          }
      })
    }
    if (problems.length) throw new PolicyCompileError(problems)
    this.#readsObjects = [...this.#index.values()].some((l) =>
      l.some((r) => r.usesObject || r.usesOldObject),
    )
    this.policies = policies
    this.ruleCount = order
  }

  #candidates(verb: string, base: string): CompiledRule[] {
    const lists: CompiledRule[][] = []
    for (const key of [`${verb}|${base}`, `${verb}|*`, `*|${base}`, `*|*`]) {
      const l = this.#index.get(key)
      if (l) lists.push(l)
    }
    if (lists.length === 0) return []
    if (lists.length === 1) return lists[0]!
    return lists.flat().sort((a, b) => a.order - b.order)
  }

  #identityMatches(identity: Identity, policyIndex: number): boolean {
    let cache = this.#subjectCache.get(identity)
    if (!cache) {
      cache = new Uint8Array(this.policies.length)
      this.#subjectCache.set(identity, cache)
    }
    const c = cache[policyIndex]!
    if (c !== 0) return c === 1
    const m = this.policies[policyIndex]!.matchesIdentity(identity)
    cache[policyIndex] = m ? 1 : 2
    return m
  }

  /**
   * Which objects the decision on this request depends on, before they are fetched: whether a
   * rule that applies to it reads `object` or `oldObject`, and the forwarding of the policy
   * whose allow (or approve) would let it through (who the dry run runs as). Nothing is needed
   * when no enforced allow or approve rule could let the request through.
   */
  /** What each deny and approve rule covers beyond its spelling (check-config prints it). */
  coverage(): { policy: string; rule: string; action: Action; covers: string[] }[] {
    const out: { policy: string; rule: string; action: Action; covers: string[] }[] = []
    const seen = new Set<CompiledRule>()
    for (const list of this.#index.values())
      for (const r of list) {
        if (seen.has(r)) continue
        seen.add(r)
        const covers = describeCoverage(r.raw)
        if (covers.length)
          out.push({ policy: r.policy.name, rule: r.name, action: r.action, covers })
      }
    return out.sort((a, b) => (a.policy + a.rule < b.policy + b.rule ? -1 : 1))
  }

  objectNeeds(req: PolicyRequest): ObjectNeeds | undefined {
    const { info } = req
    if (!this.#readsObjects || !info.isResourceRequest) return undefined
    const resourceKey = info.subresource ? `${info.resource}/${info.subresource}` : info.resource
    let object = false
    let oldObject = false
    let through: CompiledRule | undefined
    for (const rule of this.#candidates(info.authzVerb, info.resource)) {
      if (!this.#identityMatches(req.identity, rule.policyIndex)) continue
      if (!rule.cluster(req.cluster)) continue
      if (matchResource(rule, req, resourceKey) === Match.None) continue
      object ||= rule.usesObject
      oldObject ||= rule.usesOldObject
      if (rule.action !== 'deny' && rule.policy.mode === 'enforce') through ??= rule
    }
    if (!through || !(object || oldObject)) return undefined
    return { object, oldObject, forwarding: through.policy.forwarding }
  }

  evaluate(req: PolicyRequest): Decision {
    const t0 = performance.now()
    const { info } = req
    const base = info.isResourceRequest ? info.resource : NON_RESOURCE
    const resourceKey = info.subresource ? `${info.resource}/${info.subresource}` : info.resource
    let celInput: CelInput | undefined
    let object: RequestObject | undefined
    let oldObject: RequestObject | undefined
    let firstDeny: CompiledRule | undefined
    let firstAllow: CompiledRule | undefined
    let enforcedDeny: CompiledRule | undefined
    let enforcedAllow: CompiledRule | undefined
    // deny wins over approve, approve over allow: a request some rule wants approved is held
    let firstApprove: CompiledRule | undefined
    let enforcedApprove: CompiledRule | undefined
    const conditionErrors: string[] = []
    const filters: CompiledRule[] = []
    let refusedApprove = false

    for (const rule of this.#candidates(info.authzVerb, base)) {
      // Rules are visited in order: the first deny of any mode is the all-inclusive one, and an
      // enforced deny decides; nothing after it can change the outcome.
      if (enforcedDeny) break
      if (rule.action === 'allow' && enforcedAllow && firstAllow) continue
      if (!this.#identityMatches(req.identity, rule.policyIndex)) continue
      if (!rule.cluster(req.cluster)) continue
      let partial = false
      let failed = false
      if (info.isResourceRequest) {
        const m = matchResource(rule, req, resourceKey)
        if (m === Match.None) continue
        partial = m === Match.Partial
      } else {
        if (rule.scope === 'resource') continue
        if (rule.verbs !== '*' && !rule.verbs.has(info.authzVerb)) continue
        if (!rule.path(info.path)) continue
      }
      if (rule.when) {
        object ??= req.object ? req.object() : { value: null }
        oldObject ??= req.oldObject ? req.oldObject() : { value: null }
        celInput ??= celInputFor(
          req,
          'value' in object ? object.value : null,
          'value' in oldObject ? oldObject.value : null,
        )
        const r =
          rule.usesObject && 'unavailable' in object
            ? {
                ok: false as const,
                error: `the request object is not available: ${object.unavailable}`,
              }
            : rule.usesOldObject && 'unavailable' in oldObject
              ? {
                  ok: false as const,
                  error: `the stored object is not available: ${oldObject.unavailable}`,
                }
              : rule.when(celInput)
        if (!r.ok) {
          conditionErrors.push(`${rule.policy.name}/${rule.name}: ${r.error}`)
          // Fail closed: a deny whose condition cannot be evaluated applies; an allow does not;
          // an approve refuses (people would approve a request nobody could evaluate).
          if (rule.action === 'allow') continue
          failed = true
        } else if (!r.value) continue
      }
      const enforced = rule.policy.mode === 'enforce'
      if (failed && rule.action === 'approve') {
        firstDeny ??= rule
        if (enforced) {
          enforcedDeny = rule
          refusedApprove = true
        }
        continue
      }
      if (partial && rule.filterCollections) {
        // the caller gets the collection without what this rule names
        if (enforced) filters.push(rule)
        continue
      }
      if (rule.action === 'deny') {
        firstDeny ??= rule
        if (enforced) enforcedDeny = rule
      } else if (rule.action === 'approve') {
        firstApprove ??= rule
        if (enforced) enforcedApprove ??= rule
      } else {
        firstAllow ??= rule
        if (enforced) enforcedAllow ??= rule
      }
    }

    const effective = enforcedDeny ?? enforcedApprove ?? enforcedAllow
    const allInclusive = firstDeny ?? firstApprove ?? firstAllow
    const decision: Decision = effective
      ? {
          ...deciding(effective),
          ...(refusedApprove && effective === enforcedDeny ? { action: 'deny' as const } : {}),
          ...(effective.action === 'deny' && effective.message
            ? { message: effective.message }
            : {}),
          obligations: {
            audit: effective.audit,
            ...(effective.action !== 'deny' && effective.policy.forwarding
              ? { forwarding: effective.policy.forwarding }
              : {}),
            ...(effective.action !== 'deny' && effective.session
              ? { session: effective.session }
              : {}),
            ...(effective.action !== 'deny' && effective.mask ? { mask: effective.mask } : {}),
            ...(effective.approval && effective !== enforcedDeny
              ? { approval: effective.approval }
              : {}),
            ...(effective.action !== 'deny' && filters.length
              ? { filter: filters.map(collectionFilter) }
              : {}),
          },
        }
      : {
          action: 'deny',
          rule: 'builtin:default-deny',
          obligations: { audit: DEFAULT_AUDIT_LEVEL },
        }
    const shadowAction: Action = allInclusive ? allInclusive.action : 'deny'
    if (allInclusive && allInclusive.policy.mode === 'shadow' && shadowAction !== decision.action)
      decision.shadow = deciding(allInclusive)
    if (conditionErrors.length) decision.conditionErrors = conditionErrors
    if (effective && effective.action !== 'allow' && info.isResourceRequest) {
      const why = coverageReason(
        { ...effective.raw, resourceMatchesSpelling: effective.resource(resourceKey) },
        info,
      )
      if (why) decision.coverage = why
    }
    decision.evaluationMicros = Math.round((performance.now() - t0) * 1000)
    return decision
  }
}

function indexVerbs(rule: CompiledRule): string[] {
  if (rule.verbs === '*') return ['*']
  if (rule.action === 'allow' || rule.coveredVerbs === '*') return [...rule.verbs]
  const out = new Set(rule.coveredVerbs)
  // subresources that mean a parent verb: create pods/eviction is a delete of the pod
  for (const v of rule.coveredVerbs) for (const s of subresourceVerbsFor(v)) out.add(s)
  return [...out]
}

function has(set: ReadonlySet<string> | '*', v: string): boolean {
  return set === '*' || set.has(v)
}

const Match = {
  None: 0,
  /** The rule applies to the request as a whole. */
  Whole: 1,
  /** A list or watch that returns what the rule names among other objects. */
  Partial: 2,
} as const
type Match = (typeof Match)[keyof typeof Match]

/**
 * Whether a resource rule applies to a request. Allow rules match as written (an allow on
 * namespace x never allows a list across all namespaces). Deny and approve rules cover every
 * request that can read or change what they name: more verbs (COVERED_VERBS), the subresources
 * that change the parent (scale, status, pods/eviction), collections across
 * namespaces and collections without a name (list, watch, deletecollection).
 */
function matchResource(rule: CompiledRule, req: PolicyRequest, resourceKey: string): Match {
  const { info } = req
  if (rule.scope === 'nonResource') return Match.None
  if (!rule.apiGroup(info.apiGroup)) return Match.None
  if (rule.exec && (!req.exec || !rule.exec(req.exec))) return Match.None
  const verb = info.authzVerb
  const covering = rule.action !== 'allow'
  if (rule.resource(resourceKey)) {
    if (!covering) {
      if (!has(rule.verbs, verb)) return Match.None
    } else if (!has(rule.coveredVerbs, verb)) return Match.None
    else if (verb === 'patch' && onlyCoveredByCreate(rule) && !isApply(req)) return Match.None
  } else {
    const parent = covering && info.subresource ? parentVerbOf(info.subresource, verb) : undefined
    if (!parent || !rule.resource(info.resource) || !has(rule.coveredVerbs, parent))
      return Match.None
  }
  let partial = false
  if (rule.namespace) {
    const isNamespace = info.apiGroup === '' && info.resource === 'namespaces'
    const ns =
      info.namespace ||
      (isNamespace ? (req.selector?.name ?? (verb === 'create' ? createdName(req) : '')) : '')
    if (ns !== '') {
      if (!rule.namespace(ns)) return Match.None
    } else if (!covering || isClusterScoped(info.apiGroup, info.resource)) return Match.None
    else if (req.selector?.namespace !== undefined) {
      if (!rule.namespace(req.selector.namespace)) return Match.None
    } else partial = true
  }
  if (rule.name_) {
    const name = info.name || (verb === 'deletecollection' ? (req.selector?.name ?? '') : '')
    if (name !== '') {
      if (!rule.name_(name)) return Match.None
    } else if (!covering) return Match.None
    else if (verb === 'create') {
      if (!createMayName(rule, req)) return Match.None
    } else partial = true
  }
  return partial && (verb === 'list' || verb === 'watch') ? Match.Partial : Match.Whole
}

/** metadata.name of a create's body ('' when unknown). */
function createdName(req: PolicyRequest): string {
  const o = req.object?.()
  const name =
    o && 'value' in o ? (o.value as { metadata?: { name?: unknown } } | null)?.metadata?.name : ''
  return typeof name === 'string' ? name : ''
}

/** A rule naming create (not update or patch) covers a patch only when it can create. */
function onlyCoveredByCreate(rule: CompiledRule): boolean {
  return rule.verbs !== '*' && !rule.verbs.has('patch') && !rule.verbs.has('update')
}

function isApply(req: PolicyRequest): boolean {
  return (req.patchType ?? '').startsWith('application/apply-patch')
}

/**
 * Whether a create can make an object the rule names: its name is in the body (metadata.name),
 * or generated from metadata.generateName plus 5 characters; unknown (protobuf): it can.
 */
function createMayName(rule: CompiledRule, req: PolicyRequest): boolean {
  const o = req.object?.()
  if (!o || !('value' in o)) return true
  const meta = (o.value as { metadata?: { name?: unknown; generateName?: unknown } } | null)
    ?.metadata
  if (typeof meta?.name === 'string' && meta.name !== '') return rule.name_!(meta.name)
  if (typeof meta?.generateName !== 'string') return true
  const prefix = meta.generateName
  return (rule.namePatterns ?? []).some((p) => {
    const wild = p.search(/[*?]/)
    if (wild < 0)
      return (
        p.startsWith(prefix) &&
        p.length === prefix.length + 5 &&
        /^[a-z0-9]*$/.test(p.slice(prefix.length))
      )
    // a glob may match when its literal start agrees with the prefix
    const literal = p.slice(0, wild)
    return literal.startsWith(prefix) || prefix.startsWith(literal)
  })
}

function collectionFilter(rule: CompiledRule): CollectionFilter {
  return {
    policy: rule.policy.name,
    rule: rule.name,
    ...(rule.namespace ? { namespace: rule.namespace } : {}),
    ...(rule.name_ ? { name: rule.name_ } : {}),
  }
}

function deciding(rule: CompiledRule): DecidingRule {
  return { action: rule.action, policy: rule.policy.name, rule: rule.name }
}

function celInputFor(req: PolicyRequest, object: unknown, oldObject: unknown): CelInput {
  const { info, identity } = req
  return {
    request: {
      cluster: req.cluster,
      verb: info.authzVerb,
      apiServerVerb: info.verb,
      isResourceRequest: info.isResourceRequest,
      ...coordinatesOf(info),
      path: info.path,
      userAgent: req.userAgent ?? '',
      dryRun: req.dryRun ?? false,
      patch: req.patch ?? null,
      exec: {
        command: req.exec?.command ?? [],
        container: req.exec?.container ?? '',
        tty: req.exec?.tty ?? false,
        stdin: req.exec?.stdin ?? false,
      },
    },
    identity: {
      name: identity.name,
      groups: identity.groups,
      method: identity.method,
      issuer: identity.issuer ?? '',
      subject: identity.subject ?? '',
      claims: identity.claims,
    },
    object: object ?? null,
    oldObject: oldObject ?? null,
  }
}
