// What a deny or approve rule covers beyond its own spelling, in words: for `check-config` (every
// rule) and `policy test` and refusals (why a rule applied to a request it does not spell out).
// The rules themselves live in engine.ts (matchResource) and src/kube/scope.ts.
import type { RequestInfo } from '../kube/request-info.ts'
import { COVERED_VERBS, parentVerbOf } from '../kube/scope.ts'
import type { PolicyRule } from './schema.ts'

/** Lines that say what a rule covers that its fields do not spell out; none for allow rules. */
export function describeCoverage(rule: PolicyRule): string[] {
  if (rule.action === 'allow' || rule.nonResourceURLs) return []
  const out: string[] = []
  const verbs: readonly string[] = rule.verbs.includes('*') ? [] : rule.verbs
  const extra = [...new Set(verbs.flatMap((v) => COVERED_VERBS[v] ?? []))].filter(
    (v) => !verbs.includes(v),
  )
  if (extra.length)
    out.push(
      `also the verbs ${extra.join(', ')} (they read or change what ${verbs.join(', ')} name${verbs.includes('create') ? '; create: server-side apply and PUT can create' : ''})`,
    )
  const bare = (rule.resources ?? ['*']).filter((r) => !r.includes('/'))
  if (bare.length)
    out.push(
      `the subresources that read or change ${bare.join(', ')} itself: status, scale, ephemeralcontainers, resize, approval, finalize, eviction (a delete), binding (an update)`,
    )
  const how = rule.collections === 'filter' ? 'answered without those objects (Warning)' : 'refused'
  if (rule.namespaces)
    out.push(
      `lists and watches across all namespaces: ${how}; deletecollection across all namespaces: refused (a fieldSelector metadata.namespace=<other> is outside the rule; built-in cluster-scoped resources are never in a namespace)`,
    )
  if (rule.names)
    out.push(
      `lists and watches without a name or with a labelSelector: ${how}; deletecollection: refused unless a fieldSelector metadata.name=<other> keeps it outside the rule; creates whose metadata.name or generateName can be one of the names`,
    )
  return out
}

/** Why a deny or approve rule applied to a request its fields do not spell out, if it did. */
export function coverageReason(
  rule: Pick<PolicyRule, 'verbs' | 'namespaces' | 'names'> & { resourceMatchesSpelling: boolean },
  info: RequestInfo,
): string | undefined {
  const reasons: string[] = []
  const verbs = rule.verbs
  if (!rule.resourceMatchesSpelling) {
    const parent = parentVerbOf(info.subresource, info.authzVerb)
    reasons.push(
      `${info.authzVerb} ${info.resource}/${info.subresource} is a ${parent} of the ${info.resource} itself`,
    )
  } else if (!verbs.includes('*') && !verbs.includes(info.authzVerb as never))
    reasons.push(`${info.authzVerb} reads or changes what ${verbs.join(', ')} name`)
  if (rule.namespaces && info.namespace === '')
    reasons.push(`a request across all namespaces reaches namespace ${rule.namespaces.join(', ')}`)
  if (rule.names && info.name === '')
    reasons.push(
      info.authzVerb === 'create'
        ? `the object created can be named ${rule.names.join(', ')}`
        : `a request without a name reaches ${rule.names.join(', ')}`,
    )
  return reasons.length ? reasons.join('; ') : undefined
}
