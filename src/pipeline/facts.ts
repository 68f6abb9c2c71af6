// The request facts (src/request/facts.ts) of a context: the value domains receive instead of
// the context itself.
import { GatewayError } from '../errors/index.ts'
import type { DecidedRequest, RequestFacts, ResponseFacts } from '../request/facts.ts'
import type { RequestContext } from './context.ts'

export function requestFacts(ctx: RequestContext): RequestFacts {
  return {
    id: ctx.id,
    receivedAt: ctx.receivedAt,
    sourceAddress: ctx.sourceAddress,
    method: ctx.req.method ?? 'GET',
    target: ctx.upstreamPath ?? ctx.req.url ?? '/',
    headers: ctx.req.headers,
    cluster: ctx.cluster?.name,
    info: ctx.requestInfo,
    identity: ctx.identity,
    decision: ctx.decision,
    body: ctx.requestBody,
    object: ctx.requestObject,
    upstreamBody: ctx.upstreamBody,
    principal: ctx.principal,
    approval: ctx.approval,
  }
}

/** The facts of a request that policy decided on (authorize ran): throws before that. */
export function decidedRequest(ctx: RequestContext): DecidedRequest {
  const facts = requestFacts(ctx)
  const { cluster, info, identity, decision } = facts
  if (!cluster || !info || !identity || !decision)
    throw new GatewayError('GW_INTERNAL', 'a stage ran before the request was decided')
  return { ...facts, cluster, info, identity, decision }
}

/** How the answer went, as far as the forward stage got (undefined: nothing was answered). */
export function responseFacts(ctx: RequestContext): ResponseFacts | undefined {
  if (ctx.responseStatus === undefined) return undefined
  return {
    status: ctx.responseStatus,
    requestBytes: ctx.requestBytes ?? ctx.requestBody?.length ?? 0,
    responseBytes: ctx.responseBytes ?? 0,
    sentBytes: ctx.sentBytes,
    complete: ctx.responseComplete,
    body: ctx.responseBody,
  }
}
