// What the request would do, for approvers: the same request sent with dryRun=All, as the
// identity the cluster would see (the impersonate stage computes the headers on a copy of the
// request context), for create, update, patch and delete. The API server answers with the object
// as it would become (defaults, admission) or with the refusal it would give. Masked like bodies.
import type { RequestContext } from '../pipeline/context.ts'
import { createImpersonateStage } from '../pipeline/stages/impersonate.ts'
import { maskKubernetesJson } from '../masking/objects.ts'
import { maskText } from '../masking/text.ts'
import type { ApprovalRecord } from './record.ts'

const DRY_RUN_VERBS = new Set(['create', 'update', 'patch', 'delete'])
const SHOWN_BYTES = 64 * 1024

function withDryRun(path: string): string {
  return path.includes('?') ? `${path}&dryRun=All` : `${path}?dryRun=All`
}

function masked(text: string): string {
  try {
    const value = JSON.parse(text) as { metadata?: { managedFields?: unknown } }
    // bookkeeping, not what the object will be
    if (value.metadata) delete value.metadata.managedFields
    return JSON.stringify(maskKubernetesJson(value).value, null, 2)
  } catch {
    return maskText(text).text
  }
}

export async function dryRunOf(ctx: RequestContext): Promise<ApprovalRecord['dryRun']> {
  const info = ctx.requestInfo!
  if (!info.isResourceRequest || !DRY_RUN_VERBS.has(info.verb)) return undefined
  const copy: RequestContext = {
    ...ctx,
    id: `${ctx.id}-dry-run`,
    timings: {},
    warnings: [],
  }
  await createImpersonateStage().run(copy)
  // JSON back, whatever the client accepts (kubectl asks for protobuf): approvers read it
  const headers: string[] = []
  const sent = copy.upstreamHeaders!
  for (let i = 0; i < sent.length; i += 2)
    if (sent[i]!.toLowerCase() !== 'accept') headers.push(sent[i]!, sent[i + 1]!)
  headers.push('Accept', 'application/json')
  const cluster = ctx.cluster!
  const res = await cluster.agent.request({
    origin: cluster.server.origin,
    path: withDryRun(ctx.upstreamPath ?? '/'),
    method: ctx.req.method ?? 'GET',
    headers,
    body: ctx.requestBody ?? null,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const text = Buffer.from(await res.body.arrayBuffer())
    .subarray(0, SHOWN_BYTES)
    .toString('utf8')
  return { code: res.statusCode, text: masked(text) }
}
