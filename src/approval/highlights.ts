// The fields that matter for a request, pulled to the top of what approvers read, whatever the
// object puts before them (a 70 KB annotation cannot push `subjects` out of view): for RBAC the
// roleRef, subjects and rules; for workloads each container's image and privileges, host
// namespaces, hostPath volumes and the service account; for webhooks where they send objects;
// for exec the argv as a list; for proxies the method, path and query; for a deletecollection
// what it would delete. Pure: a (masked) object and the request's parameters in, a list out.
import type { GoQuery } from '../kube/query.ts'

export interface Highlight {
  /** What this is (`roleRef`, `containers[0] "app"`, `command`). */
  field: string
  value: unknown
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const get = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), o)

/** Drops undefined entries so a highlight only shows what is set. */
function defined(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}

/** The pod spec inside a workload object, wherever its kind keeps it. */
function podSpecOf(o: Obj): Obj | undefined {
  const spec = get(o, 'spec')
  const candidates = [
    o['kind'] === 'Pod' ? spec : undefined,
    get(o, 'template', 'spec'), // PodTemplate
    get(spec, 'template', 'spec'), // Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, RC
    get(spec, 'jobTemplate', 'spec', 'template', 'spec'), // CronJob
  ]
  return candidates.find(isObj)
}

function containerHighlights(pod: Obj): Highlight[] {
  const out: Highlight[] = []
  for (const group of ['initContainers', 'containers', 'ephemeralContainers'])
    list(pod[group]).forEach((c, i) => {
      if (!isObj(c)) return
      const sc = c['securityContext']
      out.push({
        field: `${group}[${i}]`,
        value: defined({
          name: c['name'],
          image: c['image'],
          command: c['command'],
          args: c['args'],
          privileged: get(sc, 'privileged'),
          allowPrivilegeEscalation: get(sc, 'allowPrivilegeEscalation'),
          runAsUser: get(sc, 'runAsUser'),
          capabilitiesAdded: get(sc, 'capabilities', 'add'),
        }),
      })
    })
  return out
}

function podHighlights(pod: Obj): Highlight[] {
  const out: Highlight[] = []
  const add = (field: string, value: unknown): void => {
    if (value !== undefined) out.push({ field, value })
  }
  add('serviceAccountName', pod['serviceAccountName'] ?? pod['serviceAccount'] ?? 'default')
  add('automountServiceAccountToken', pod['automountServiceAccountToken'])
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC', 'nodeName']) add(k, pod[k])
  add('securityContext.runAsUser', get(pod, 'securityContext', 'runAsUser'))
  const hostPaths = list(pod['volumes'])
    .filter((v) => isObj(v) && isObj(v['hostPath']))
    .map((v) => ({ name: get(v, 'name'), path: get(v, 'hostPath', 'path') }))
  if (hostPaths.length) add('hostPath volumes', hostPaths)
  return [...containerHighlights(pod), ...out]
}

function objectHighlights(o: Obj): Highlight[] {
  const kind = typeof o['kind'] === 'string' ? o['kind'] : ''
  if (kind === 'RoleBinding' || kind === 'ClusterRoleBinding')
    return [
      { field: 'roleRef', value: o['roleRef'] },
      { field: 'subjects', value: o['subjects'] ?? [] },
    ]
  if (kind === 'Role' || kind === 'ClusterRole')
    return [
      { field: 'rules', value: o['rules'] ?? [] },
      ...(o['aggregationRule'] ? [{ field: 'aggregationRule', value: o['aggregationRule'] }] : []),
    ]
  if (kind === 'MutatingWebhookConfiguration' || kind === 'ValidatingWebhookConfiguration')
    return list(o['webhooks']).map((w, i) => ({
      field: `webhooks[${i}]`,
      value: defined({
        name: get(w, 'name'),
        clientConfig: get(w, 'clientConfig'),
        rules: get(w, 'rules'),
        failurePolicy: get(w, 'failurePolicy'),
      }),
    }))
  if (kind === 'Secret')
    return [
      { field: 'type', value: o['type'] ?? 'Opaque' },
      {
        field: 'keys',
        value: [...Object.keys(get(o, 'data') ?? {}), ...Object.keys(get(o, 'stringData') ?? {})],
      },
    ]
  if (kind.endsWith('List') && Array.isArray(o['items']))
    return [
      {
        field: `items (${o['items'].length})`,
        value: o['items'].map((it) =>
          [get(it, 'metadata', 'namespace'), get(it, 'metadata', 'name')]
            .filter((x) => typeof x === 'string')
            .join('/'),
        ),
      },
    ]
  const pod = podSpecOf(o)
  return pod ? podHighlights(pod) : []
}

/** exec, attach, port-forward and proxy requests: what runs where, from the query. */
function requestHighlights(
  r: { resource: string; subresource: string; verb: string; method: string; proxyPath?: string },
  query: GoQuery,
): Highlight[] {
  const flag = (k: string): boolean | undefined =>
    query.has(k) ? ['true', '1'].includes(query.get(k)![0]!) : undefined
  if (r.resource === 'pods' && (r.subresource === 'exec' || r.subresource === 'attach'))
    return [
      ...(r.subresource === 'exec'
        ? [{ field: 'command', value: query.get('command') ?? [] }]
        : []),
      { field: 'container', value: query.get('container')?.[0] ?? '(the default container)' },
      {
        field: 'streams',
        value: defined({
          tty: flag('tty'),
          stdin: flag('stdin'),
          stdout: flag('stdout'),
          stderr: flag('stderr'),
        }),
      },
    ]
  if (r.resource === 'pods' && r.subresource === 'portforward')
    return [{ field: 'ports', value: query.get('ports') ?? [] }]
  if (r.proxyPath !== undefined)
    return [
      { field: 'method', value: r.method },
      { field: 'proxied path', value: r.proxyPath },
      { field: 'proxied query', value: Object.fromEntries(query) },
    ]
  return []
}

/** Highlights of a request: its parameters first, then the object it creates or changes. */
export function highlightsOf(
  r: { resource: string; subresource: string; verb: string; method: string; proxyPath?: string },
  query: GoQuery,
  object: unknown,
): Highlight[] {
  return [...requestHighlights(r, query), ...(isObj(object) ? objectHighlights(object) : [])]
}
