// What the request would do, for approvers: the same request sent with dryRun=All, as the
// identity the cluster would see (the hold stage gives the headers the impersonate stage
// computes for it), for create, update, patch, delete and deletecollection. The API server
// answers with the object as it would become (defaults, admission), the objects a
// deletecollection would delete, or the refusal it would give; it also decodes protobuf bodies
// that Gatehouse cannot. Read whole up to the size approvers are shown (never cut: a larger
// answer is reported as such), masked like bodies, without managedFields.
import type { RequestInfo } from '../kube/request-info.ts'
import type { UpstreamCluster } from '../upstream/cluster.ts'
import { withDryRun } from '../upstream/dry-run.ts'
import { withAccept } from '../upstream/headers.ts'
import { maskKubernetesJson } from '../masking/objects.ts'
import { maskText } from '../masking/text.ts'
import { MAX_SHOWN_BYTES, type DryRunOutcome } from './shown.ts'

const DRY_RUN_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection'])
/** Connect subresources and proxies have no dry run: their POST reaches the kubelet or a pod. */
const NO_DRY_RUN_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'proxy'])

/** The request as it would be forwarded, and the headers of the principal it is sent as. */
export interface DryRunInput {
  cluster: UpstreamCluster
  info: RequestInfo
  method: string
  /** Path and query as forwarded. */
  path: string
  /** The body as forwarded (as sent, or pinned to the resourceVersion policy read). */
  body: Buffer | undefined
  /** The upstream headers for the principal (credential, Impersonate-*, Audit-ID). */
  headers: readonly string[]
}

/**
 * The body of the dry run. A DELETE with a body takes its options from the body alone: the API
 * server then ignores the query, `?dryRun=All` included (handlers/delete.go decodes the query
 * only when the body is empty), so the dry run goes into the DeleteOptions themselves. A body
 * that is not a JSON object cannot be made a dry run: undefined, and nothing is sent.
 */
export function dryRunBody(method: string, body: Buffer | undefined): Buffer | null | undefined {
  if (!body?.length) return null
  if (method.toUpperCase() !== 'DELETE') return body
  try {
    const options = JSON.parse(body.toString('utf8')) as unknown
    if (typeof options !== 'object' || options === null || Array.isArray(options)) return undefined
    return Buffer.from(JSON.stringify({ ...options, dryRun: ['All'] }))
  } catch {
    return undefined
  }
}

/** The answer as approvers see it: masked JSON without bookkeeping, or masked text. */
export function maskedAnswer(text: string): { text: string; object?: unknown } {
  try {
    const value = JSON.parse(text) as {
      metadata?: { managedFields?: unknown }
      items?: { metadata?: { managedFields?: unknown } }[]
    }
    // bookkeeping, not what the object will be
    if (value.metadata) delete value.metadata.managedFields
    for (const item of Array.isArray(value.items) ? value.items : [])
      if (item.metadata) delete item.metadata.managedFields
    const masked = maskKubernetesJson(value).value
    return { text: JSON.stringify(masked, null, 2), object: masked }
  } catch {
    return { text: maskText(text).text }
  }
}

export function hasDryRun(info: RequestInfo): boolean {
  return (
    info.isResourceRequest &&
    DRY_RUN_VERBS.has(info.verb) &&
    !NO_DRY_RUN_SUBRESOURCES.has(info.subresource)
  )
}

async function readBounded(body: AsyncIterable<Buffer>): Promise<Buffer | { tooLarge: number }> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of body) {
    n += c.length
    if (n > MAX_SHOWN_BYTES) return { tooLarge: n }
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

export async function dryRunOf(input: DryRunInput): Promise<DryRunOutcome | undefined> {
  if (!hasDryRun(input.info)) return undefined
  const { method, cluster } = input
  const body = dryRunBody(method, input.body)
  if (body === undefined)
    return {
      error: 'no dry run: the DeleteOptions body is not a JSON object Gatehouse can mark dryRun',
    }
  // JSON back, whatever the client accepts (kubectl asks for protobuf): approvers read it
  // (and the body's own length: a DeleteOptions body marked dryRun is longer)
  const headers = withAccept(input.headers, () => 'application/json', ['content-length'])
  const res = await cluster.agent.request({
    origin: cluster.server.origin,
    path: withDryRun(input.path),
    method,
    headers,
    body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const data = await readBounded(res.body)
  if (!Buffer.isBuffer(data)) {
    res.body.destroy()
    return {
      error: `the API server's dry-run answer is larger than the ${MAX_SHOWN_BYTES} bytes approvers are shown`,
      tooLarge: true,
    }
  }
  const shown = maskedAnswer(data.toString('utf8'))
  return {
    code: res.statusCode,
    text: shown.text,
    ...(shown.object !== undefined ? { object: shown.object } : {}),
  }
}
