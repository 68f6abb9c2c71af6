// What a request can read or change, beyond the attributes the API server authorizes it by:
// a list across all namespaces returns every namespace's objects, a deletecollection deletes
// every object that matches, `pods/eviction` deletes a pod, `deployments/scale` changes a
// Deployment. Policy uses this so that a deny (or approve) rule covers every request that can
// reach what it names, not only the requests spelt the way the rule is written.

/** Verbs that act on every object of a collection that matches the request's selectors. */
export const COLLECTION_VERBS: ReadonlySet<string> = new Set(['list', 'watch', 'deletecollection'])

/**
 * For each verb a rule names, the request verbs that read or change the same objects:
 * - a list or watch returns the objects a get returns (a watch starts with the list's items:
 *   `resourceVersion=0`, `sendInitialEvents`);
 * - update and patch both replace fields of the stored object;
 * - create: server-side apply (a patch) and PUT create objects that do not exist yet;
 * - deletecollection deletes what delete deletes.
 */
export const COVERED_VERBS: Readonly<Record<string, readonly string[]>> = {
  get: ['get', 'list', 'watch'],
  list: ['list', 'watch'],
  watch: ['watch'],
  create: ['create', 'update', 'patch'],
  update: ['update', 'patch'],
  patch: ['patch', 'update'],
  delete: ['delete', 'deletecollection'],
  deletecollection: ['deletecollection'],
}

/** Subresources whose requests read or change the parent object, with the parent verb each means. */
const PARENT_VERBS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  status: { get: 'get', update: 'update', patch: 'patch' },
  scale: { get: 'get', update: 'update', patch: 'patch' },
  ephemeralcontainers: { get: 'get', update: 'update', patch: 'patch' },
  resize: { get: 'get', update: 'update', patch: 'patch' },
  finalize: { update: 'update' },
  approval: { get: 'get', update: 'update', patch: 'patch' },
  eviction: { create: 'delete' },
  binding: { create: 'update' },
}

/** `create pods/eviction` means `delete` of the pod; undefined: the subresource is its own thing. */
export function parentVerbOf(subresource: string, verb: string): string | undefined {
  return PARENT_VERBS[subresource]?.[verb]
}

/** Request verbs that a subresource maps to a parent verb (for indexing rules by verb). */
export function subresourceVerbsFor(parentVerb: string): string[] {
  const out = new Set<string>()
  for (const verbs of Object.values(PARENT_VERBS))
    for (const [verb, parent] of Object.entries(verbs)) if (parent === parentVerb) out.add(verb)
  return [...out]
}

/**
 * Built-in resources that have no namespace (group/resource). A request for them without a
 * namespace is not "all namespaces". Anything not listed (custom resources included) might be
 * namespaced, so a cluster-wide request for it is treated as all namespaces (fail closed).
 * `namespaces` is not listed: a Namespace is the namespace a rule names.
 */
const CLUSTER_SCOPED = new Set([
  '/nodes',
  '/persistentvolumes',
  '/componentstatuses',
  'rbac.authorization.k8s.io/clusterroles',
  'rbac.authorization.k8s.io/clusterrolebindings',
  'storage.k8s.io/storageclasses',
  'storage.k8s.io/csidrivers',
  'storage.k8s.io/csinodes',
  'storage.k8s.io/volumeattachments',
  'storage.k8s.io/volumeattributesclasses',
  'apiextensions.k8s.io/customresourcedefinitions',
  'apiregistration.k8s.io/apiservices',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingadmissionpolicies',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings',
  'admissionregistration.k8s.io/mutatingadmissionpolicies',
  'admissionregistration.k8s.io/mutatingadmissionpolicybindings',
  'certificates.k8s.io/certificatesigningrequests',
  'certificates.k8s.io/clustertrustbundles',
  'scheduling.k8s.io/priorityclasses',
  'node.k8s.io/runtimeclasses',
  'networking.k8s.io/ingressclasses',
  'networking.k8s.io/ipaddresses',
  'networking.k8s.io/servicecidrs',
  'flowcontrol.apiserver.k8s.io/flowschemas',
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations',
  'authentication.k8s.io/tokenreviews',
  'authentication.k8s.io/selfsubjectreviews',
  'authorization.k8s.io/subjectaccessreviews',
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectrulesreviews',
  'resource.k8s.io/deviceclasses',
  'resource.k8s.io/resourceslices',
  'internal.apiserver.k8s.io/storageversions',
])

export function isClusterScoped(apiGroup: string, resource: string): boolean {
  return CLUSTER_SCOPED.has(`${apiGroup}/${resource}`)
}

/** What a request's selectors pin down exactly: `fieldSelector=metadata.namespace=x,…`. */
export interface SelectorFacts {
  name?: string
  namespace?: string
}

/**
 * The exact-match terms (`=`, `==`) on metadata.name and metadata.namespace of a fieldSelector.
 * Terms are ANDed, so one such term restricts the request to that value. A selector with
 * escapes or a term without an operator pins nothing (request-info refuses those for lists).
 */
export function selectorFacts(fieldSelector: string | undefined): SelectorFacts {
  const out: SelectorFacts = {}
  if (!fieldSelector || fieldSelector.includes('\\')) return out
  for (const term of fieldSelector.split(',')) {
    const m = /^(metadata\.name|metadata\.namespace)(==|=)(.*)$/.exec(term)
    if (!m) continue
    const value = m[3]!
    if (value === '' || /[,=!]/.test(value)) continue
    const key = m[1] === 'metadata.name' ? 'name' : 'namespace'
    // two different exact values match nothing; keep the first (covering stays conservative)
    out[key] ??= value
  }
  return out
}

/** selectorFacts of the fieldSelector in a raw query string (the first value, as Go reads it). */
export function selectorFactsOf(query: URLSearchParams): SelectorFacts {
  return selectorFacts(query.get('fieldSelector') ?? undefined)
}
