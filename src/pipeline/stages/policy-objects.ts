// The objects a decision reads, for authorize: the body as decoded (create), what the write
// would store and what is stored now (from the API server: src/upstream/dry-run.ts), asked for
// only when a rule that applies reads them. The pre-flight requests go out as the principal
// the request itself would be forwarded as (the impersonate stage run on a copy of the
// context), so the cluster's RBAC and admission judge them as they will judge the request.
import type { RequestObject } from '../../kube/body.ts'
import type { ObjectNeeds } from '../../policy/index.ts'
import { resourceVersionOf, writeObjects } from '../../upstream/dry-run.ts'
import type { RequestContext } from '../context.ts'
import { createImpersonateStage } from './impersonate.ts'
import { decodeRequestObject } from './read-body.ts'

export interface PolicyObjects {
  object: () => RequestObject
  oldObject: () => RequestObject
  patch: unknown
  /**
   * The resourceVersion of the object the decision read (from the dry run): the write is
   * pinned to it (src/kube/precondition.ts). Empty when no dry run was made.
   */
  resourceVersion: string
}

const NULL: RequestObject = { value: null, format: 'json' }

/** The upstream headers of the principal the request would be forwarded as. */
async function principalHeaders(ctx: RequestContext, needs: ObjectNeeds): Promise<string[]> {
  const copy: RequestContext = {
    ...ctx,
    timings: {},
    warnings: [],
    decision: {
      action: 'allow',
      rule: 'builtin:policy-preflight',
      obligations: {
        audit: 'metadata',
        ...(needs.forwarding ? { forwarding: needs.forwarding } : {}),
      },
    },
  }
  await createImpersonateStage().run(copy)
  return copy.upstreamHeaders!
}

/** Objects without asking the API server: the decoded body of a create, nothing else. */
export function localObjects(ctx: RequestContext): PolicyObjects {
  const info = ctx.requestInfo!
  const body = decodeRequestObject(ctx)
  const isDelete = info.verb === 'delete' || info.verb === 'deletecollection'
  return {
    object: () => (isDelete ? NULL : body),
    oldObject: () => NULL,
    patch: info.verb === 'patch' && 'value' in body ? body.value : null,
    resourceVersion: '',
  }
}

export async function policyObjects(
  ctx: RequestContext,
  needs: ObjectNeeds | undefined,
): Promise<PolicyObjects> {
  const local = localObjects(ctx)
  const info = ctx.requestInfo!
  if (!needs) return local
  const body = decodeRequestObject(ctx)
  const changes = info.verb === 'update' || info.verb === 'patch'
  const result = needs.object && (changes || (info.verb === 'create' && 'unavailable' in body))
  const current = needs.oldObject && (changes || info.verb === 'delete')
  if (!result && !current) return local
  const fetched = await writeObjects(
    {
      cluster: ctx.cluster!,
      path: ctx.upstreamPath ?? '/',
      method: ctx.req.method ?? 'GET',
      body: ctx.requestBody,
      headers: await principalHeaders(ctx, needs),
      requestId: ctx.id,
      apiGroup: info.apiGroup,
      resource: info.resource,
      subresource: info.subresource,
    },
    { result, current },
  )
  const object = fetched.object
  const oldObject = fetched.oldObject
  return {
    object: object ? () => object : local.object,
    oldObject: oldObject ? () => oldObject : local.oldObject,
    patch: local.patch,
    resourceVersion: result && object && 'value' in object ? resourceVersionOf(object) : '',
  }
}
