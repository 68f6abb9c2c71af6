// What an approval is bound to: the exact request. Identity, cluster, verb, resource (group,
// resource, subresource), namespace, name and, for writes, a SHA-256 of the body: an approval for
// one object never lets another one through (a different body, name or namespace is asked anew).
import { createHash } from 'node:crypto'
import type { RequestContext } from '../pipeline/context.ts'
import { maskKubernetesJson } from '../masking/objects.ts'
import { maskText } from '../masking/text.ts'
import type { ApprovalRecord } from './record.ts'

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

export function bodyHash(ctx: RequestContext): string {
  return ctx.requestBody?.length ? sha256(ctx.requestBody) : ''
}

/** The binding key of a request (hex SHA-256 of its bound attributes, in a fixed order). */
export function requestBinding(ctx: RequestContext): string {
  const info = ctx.requestInfo!
  return sha256(
    JSON.stringify([
      ctx.identity!.name,
      ctx.cluster!.name,
      info.authzVerb,
      info.apiGroup,
      info.resource,
      info.subresource,
      info.namespace,
      info.name,
      info.isResourceRequest ? '' : info.path,
      bodyHash(ctx),
    ]),
  )
}

/** The largest body an approver is shown (the hash binds the whole body anyway). */
const SHOWN_BODY_BYTES = 64 * 1024

/**
 * The request body as approvers see it: parsed JSON masked structurally (Secret data, env
 * values, ...), anything else masked as text; binary bodies (protobuf) as masked latin1.
 */
export function maskedBody(ctx: RequestContext): ApprovalRecord['body'] {
  const data = ctx.requestBody
  if (!data?.length) return undefined
  const contentType = String(ctx.req.headers['content-type'] ?? '')
  const truncated = data.length > SHOWN_BODY_BYTES
  if (/json/i.test(contentType) && !truncated) {
    try {
      const m = maskKubernetesJson(JSON.parse(data.toString('utf8')))
      return { contentType, text: JSON.stringify(m.value, null, 2), truncated, masked: m.masked }
    } catch {
      // not JSON after all: masked as text below
    }
  }
  const textual = /json|yaml|text/i.test(contentType)
  const head = data.subarray(0, SHOWN_BODY_BYTES)
  // Protobuf (kubectl and client-go send it for built-in types): its readable strings (names,
  // labels, subjects...), one a line, like strings(1); the dry run shows the decoded object.
  const m = maskText(textual ? head.toString('utf8') : readableStrings(head))
  const masked = Object.values(m.counts).reduce((a, b) => a + b, 0)
  return {
    contentType,
    text: textual
      ? m.text
      : `(${contentType || 'binary body'}, ${data.length} bytes; its readable strings:)\n${m.text}`,
    truncated,
    masked,
  }
}

function readableStrings(data: Buffer): string {
  return (data.toString('latin1').match(/[\x20-\x7e]{3,}/g) ?? []).join('\n')
}
