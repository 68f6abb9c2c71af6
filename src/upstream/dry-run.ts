// The objects policy conditions read for writes, from the API server itself: `object` is what the
// write would store (the same request sent with dryRun=All, as the principal Gatehouse will
// forward it as, so defaults, admission and every patch type (JSON, merge, strategic merge,
// server-side apply) are applied by the cluster's own code), `oldObject` what is stored now (a
// GET as that principal). For the scale subresource of the built-in workloads, both are the
// workload itself, with the Scale's spec.replicas applied to `object`. Whatever the API server
// does not answer with an object is `unavailable` with the reason: a condition that reads it
// is an error, which refuses the request under a deny or approve rule (fail closed).
//
// These requests carry Audit-ID `<request id>-policy-dry-run` and `-policy-get`, so the API
// server's audit log joins them to the request they were made for.
import type { RequestObject } from '../kube/body.ts'
import type { UpstreamCluster } from './cluster.ts'
import { withAccept } from './headers.ts'

const TIMEOUT_MS = 10_000
/** Objects larger than this are not read for conditions (the API server caps objects near 1.5 MB). */
const MAX_OBJECT_BYTES = 4 * 1024 * 1024

/** Workloads whose Scale writes `spec.replicas` of the object itself. */
const SPEC_REPLICAS_KINDS = new Set([
  'apps/deployments',
  'apps/replicasets',
  'apps/statefulsets',
  '/replicationcontrollers',
])

export interface PreflightRequest {
  cluster: UpstreamCluster
  /** Path and query as forwarded. */
  path: string
  method: string
  body: Buffer | undefined
  /** The upstream headers for the principal (credential, Impersonate-*), without Audit-ID. */
  headers: readonly string[]
  requestId: string
  apiGroup: string
  resource: string
  subresource: string
}

/** The same path and query with `dryRun=All` added. */
export function withDryRun(path: string): string {
  return path.includes('?') ? `${path}&dryRun=All` : `${path}?dryRun=All`
}

/** Headers for a pre-flight: JSON asked for, uncompressed, with its own Audit-ID. */
function preflightHeaders(src: readonly string[], auditId: string, withBody: boolean): string[] {
  // Expect belongs to the client's hop (undici refuses it); Accept and Audit-ID are ours
  const drop = ['audit-id', 'expect', ...(withBody ? [] : ['content-type', 'content-length'])]
  return [...withAccept(src, () => 'application/json', drop), 'Audit-ID', auditId]
}

async function call(
  r: PreflightRequest,
  what: 'dry run' | 'read',
  method: string,
  path: string,
  withBody: boolean,
): Promise<RequestObject> {
  const suffix = what === 'dry run' ? 'policy-dry-run' : 'policy-get'
  let res
  try {
    res = await r.cluster.agent.request({
      origin: r.cluster.server.origin,
      path,
      method,
      headers: preflightHeaders(r.headers, `${r.requestId}-${suffix}`, withBody),
      body: withBody ? (r.body ?? null) : null,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    })
  } catch (e) {
    return { unavailable: `the API server's ${what} failed: ${(e as Error).message}` }
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length
    if (size > MAX_OBJECT_BYTES) {
      res.body.destroy()
      return { unavailable: `the object is larger than ${MAX_OBJECT_BYTES} bytes` }
    }
    chunks.push(c)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { unavailable: `the API server's ${what} answered ${res.statusCode} without JSON` }
  }
  if (res.statusCode >= 300) {
    const s = value as { reason?: unknown; message?: unknown }
    const reason = typeof s.reason === 'string' ? ` ${s.reason}` : ''
    const message = typeof s.message === 'string' ? `: ${s.message.slice(0, 300)}` : ''
    return { unavailable: `the API server's ${what} answered ${res.statusCode}${reason}${message}` }
  }
  return { value, format: 'json' }
}

/** The object the write would store: the request with dryRun=All. */
export function dryRunObject(r: PreflightRequest): Promise<RequestObject> {
  return call(r, 'dry run', r.method, withDryRun(r.path), true)
}

/** The object as stored now (null when it does not exist yet). */
export async function currentObject(r: PreflightRequest, path = r.path): Promise<RequestObject> {
  const o = await call(r, 'read', 'GET', path.split('?')[0]!, false)
  // a write that creates (server-side apply, PUT) has no old object
  if ('unavailable' in o && / 404 NotFound/.test(o.unavailable))
    return { value: null, format: 'json' }
  return o
}

function isSpecReplicasScale(r: PreflightRequest): boolean {
  return r.subresource === 'scale' && SPEC_REPLICAS_KINDS.has(`${r.apiGroup}/${r.resource}`)
}

/**
 * `object` and `oldObject` of a write. `result`: also what it would store (update, patch, and
 * creates whose body Gatehouse cannot decode); `current`: also what is stored now.
 */
export async function writeObjects(
  r: PreflightRequest,
  want: { result: boolean; current: boolean },
): Promise<{ object?: RequestObject; oldObject?: RequestObject }> {
  if (isSpecReplicasScale(r)) {
    // the workload itself: a Scale carries no labels, template or anything else to decide on
    const parentPath = r.path.split('?')[0]!.replace(/\/scale$/, '')
    const [scale, parent] = await Promise.all([
      want.result ? dryRunObject(r) : undefined,
      currentObject(r, parentPath),
    ])
    const out: { object?: RequestObject; oldObject?: RequestObject } = { oldObject: parent }
    if (scale) out.object = withReplicas(parent, scale)
    return out
  }
  const [object, oldObject] = await Promise.all([
    want.result ? dryRunObject(r) : undefined,
    want.current ? currentObject(r) : undefined,
  ])
  return { ...(object ? { object } : {}), ...(oldObject ? { oldObject } : {}) }
}

/** metadata.resourceVersion of a decoded object ('' when it has none). */
export function resourceVersionOf(o: RequestObject | undefined): string {
  if (!o || !('value' in o)) return ''
  const rv = (o.value as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
    ?.resourceVersion
  return typeof rv === 'string' ? rv : ''
}

function withReplicas(parent: RequestObject, scale: RequestObject): RequestObject {
  if ('unavailable' in scale) return scale
  if ('unavailable' in parent) return parent
  const replicas = (scale.value as { spec?: { replicas?: unknown } } | null)?.spec?.replicas
  const p = parent.value as { spec?: Record<string, unknown> } | null
  if (!p) return { unavailable: 'the object to scale does not exist' }
  // both reads must be of one version, or the object policy judges never existed
  if (resourceVersionOf(parent) !== resourceVersionOf(scale))
    return { unavailable: 'the object changed while Gatehouse read it; retry the request' }
  return { value: { ...p, spec: { ...p.spec, replicas: replicas ?? 0 } }, format: 'json' }
}
