// RequestContext (after the request ended) → AuditRecord. Bodies are kept only as far as the
// decision's audit level asks, never beyond audit.maxBodyBytes, and always masked: JSON bodies
// structurally (a Secret's values, secret-looking env values...) and with the text detectors,
// other bodies with the text detectors byte for byte. A Secret's body that cannot be decoded
// (protobuf, YAML, truncated) is recorded as metadata only: fail closed.
import type { GatewayError } from '../errors/index.ts'
import type { RequestContext } from '../pipeline/context.ts'
import type { AuditBody, AuditRecord } from './record.ts'
import { selectClaims } from './record.ts'
import { maskRequestTarget, maskText } from '../masking/text.ts'
import { maskHead } from '../masking/stream.ts'
import {
  maskKubernetesJson,
  defaultObjectRules,
  type ObjectMaskingRules,
} from '../masking/objects.ts'

let defaultRules: ObjectMaskingRules | undefined

const TEXT_TYPES = /^(application\/([\w.+-]*\+)?(json|yaml)|application\/apply-patch\+yaml|text\/)/i

/**
 * The kept head of a body, with secrets and regulated values masked (src/masking): the audit
 * store never holds a card number, a key or a token in clear. Binary bodies (protobuf) are
 * masked byte for byte as latin1, then kept as base64.
 */
function body(
  contentType: string,
  data: Buffer,
  fullBytes: number,
  max: number,
  rules: ObjectMaskingRules,
  secret: boolean,
): AuditBody | { omitted: string } {
  const json = decodedJson(contentType, data, fullBytes, rules, secret)
  if (json) {
    const kept = Buffer.from(json.text).subarray(0, max)
    return {
      contentType,
      encoding: 'utf8',
      data: kept.toString('utf8'),
      truncated: kept.length < json.text.length,
      bytes: fullBytes,
      ...(json.masked ? { masked: json.masked } : {}),
    }
  }
  if (secret) return SECRET_OMITTED
  const head = data.subarray(0, max)
  const text = TEXT_TYPES.test(contentType)
  // a head cut short may end inside a value: masked as it stands (src/masking/stream.ts)
  const mask = fullBytes > head.length ? maskHead : maskText
  const masked = mask(text ? head.toString('utf8') : head.toString('latin1'), {
    detectors: rules.detectors,
    replacement: rules.replacement,
  })
  const count = Object.values(masked.counts).reduce((a, b) => a + b, 0)
  return {
    contentType,
    encoding: text ? 'utf8' : 'base64',
    data: text ? masked.text : Buffer.from(masked.text, 'latin1').toString('base64'),
    truncated: fullBytes > head.length,
    bytes: fullBytes,
    ...(count ? { masked: count } : {}),
  }
}

/** A whole JSON body, decoded and masked by kind (a Secret patch without a kind as a Secret). */
function decodedJson(
  contentType: string,
  data: Buffer,
  fullBytes: number,
  rules: ObjectMaskingRules,
  secret: boolean,
): { text: string; masked: number } | undefined {
  if (!/^application\/([\w.+-]*\+)?json/i.test(contentType) || data.length < fullBytes) return
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
  const r = maskKubernetesJson(
    value,
    rules,
    secret ? { kind: 'Secret', apiVersion: 'v1' } : undefined,
  )
  return { text: JSON.stringify(r.value), masked: r.masked }
}

function isSecret(ctx: RequestContext): boolean {
  const info = ctx.requestInfo
  return (
    info !== undefined &&
    info.isResourceRequest &&
    info.apiGroup === '' &&
    info.resource === 'secrets'
  )
}

const SECRET_OMITTED = {
  omitted:
    'Secret bodies that Gatehouse cannot decode to mask (protobuf, YAML, truncated) are recorded as metadata only',
}

export function buildAuditRecord(
  ctx: RequestContext,
  error: GatewayError | undefined,
  opts: {
    maxBodyBytes: number
    now?: number
    masking?: ObjectMaskingRules
    /** false: no bodies (the fallback when a record with them cannot be built). */
    bodies?: boolean
  },
): AuditRecord {
  const rules = opts.masking ?? (defaultRules ??= defaultObjectRules())
  const { req, identity, requestInfo: info, decision } = ctx
  const level = decision?.obligations.audit ?? 'metadata'
  const header = (name: string): string | undefined => {
    const v = req.headers[name]
    return typeof v === 'string' ? v.slice(0, 1024) : undefined
  }
  const source: AuditRecord['source'] = { address: ctx.sourceAddress }
  if (level !== 'none') {
    const ua = header('user-agent')
    const cmd = header('kubectl-command')
    const session = header('kubectl-session')
    if (ua) source.userAgent = ua
    if (cmd) source.kubectlCommand = cmd
    if (session) source.kubectlSession = session
  }
  const record: AuditRecord = {
    id: ctx.id,
    time: new Date(ctx.receivedAt).toISOString(),
    durationMs: Math.round(((opts.now ?? Date.now()) - ctx.receivedAt) * 1000) / 1000,
    cluster: ctx.cluster?.name ?? null,
    identity: identity
      ? {
          name: identity.name,
          groups: identity.groups,
          method: identity.method,
          ...(identity.issuer ? { issuer: identity.issuer } : {}),
          ...(identity.subject ? { subject: identity.subject } : {}),
          claims: level === 'none' ? {} : selectClaims(identity.claims),
        }
      : null,
    source,
    request: info
      ? {
          method: req.method ?? 'GET',
          target: maskRequestTarget(ctx.upstreamPath ?? req.url ?? ''),
          isResourceRequest: info.isResourceRequest,
          verb: info.authzVerb,
          apiGroup: info.apiGroup,
          apiVersion: info.apiVersion,
          resource: info.resource,
          subresource: info.subresource,
          namespace: info.namespace,
          name: info.name,
        }
      : // Refused before it could be classified: what was asked is evidence all the same.
        {
          method: req.method ?? 'GET',
          target: maskRequestTarget(ctx.upstreamPath ?? req.url ?? ''),
          isResourceRequest: false,
          verb: '',
          apiGroup: '',
          apiVersion: '',
          resource: '',
          subresource: '',
          namespace: '',
          name: '',
        },
    decision: decision
      ? {
          action: decision.action,
          ...(decision.policy ? { policy: decision.policy } : {}),
          rule: decision.rule,
          ...(decision.message ? { message: decision.message } : {}),
          ...(decision.shadow ? { shadow: decision.shadow } : {}),
          ...(decision.conditionErrors ? { conditionErrors: decision.conditionErrors } : {}),
          auditLevel: level,
        }
      : null,
    principal: ctx.principal ?? null,
    response: responseOf(ctx, error),
  }
  if (error) record.error = { code: error.code, message: error.message }
  if (ctx.approval) record.approval = ctx.approval
  if (opts.bodies === false) return record
  if ((level === 'request' || level === 'requestResponse') && ctx.requestBody?.length) {
    record.requestBody = body(
      header('content-type') ?? '',
      ctx.requestBody,
      ctx.requestBody.length,
      opts.maxBodyBytes,
      rules,
      isSecret(ctx),
    )
  }
  if (level === 'requestResponse' && ctx.responseBody)
    record.responseBody = responseBody(ctx.responseBody, opts.maxBodyBytes, rules)
  return record
}

/** What the cluster answered and how far the answer got to the client. */
function responseOf(ctx: RequestContext, error: GatewayError | undefined): AuditRecord['response'] {
  return {
    code: ctx.responseStatus ?? 0,
    requestBytes: ctx.requestBytes ?? ctx.requestBody?.length ?? 0,
    responseBytes: ctx.responseBytes ?? 0,
    ...(ctx.sentBytes !== undefined
      ? { sentBytes: ctx.sentBytes, complete: ctx.responseComplete === true }
      : error?.code === 'GW_CLIENT_CLOSED'
        ? { sentBytes: 0, complete: false }
        : {}),
  }
}

/** A response head as kept in a record; a Secret's is captured only from masked output. */
function responseBody(
  r: NonNullable<RequestContext['responseBody']>,
  max: number,
  rules: ObjectMaskingRules,
): AuditBody | { omitted: string } {
  return body(r.contentType, r.head, r.bytes, max, rules, false)
}

/**
 * The final record of a forwarded request from the record journaled before forwarding: who,
 * what and the decision are those of `pre` (nothing after the journal stage changes them);
 * the outcome (duration, response, error, response body) is added. Cheaper than building the
 * whole record again on every request.
 */
export function completeAuditRecord(
  pre: AuditRecord,
  ctx: RequestContext,
  error: GatewayError | undefined,
  opts: { maxBodyBytes: number; now?: number; masking?: ObjectMaskingRules },
): AuditRecord {
  const record: AuditRecord = {
    ...pre,
    durationMs: Math.round(((opts.now ?? Date.now()) - ctx.receivedAt) * 1000) / 1000,
    response: responseOf(ctx, error),
  }
  if (error) record.error = { code: error.code, message: error.message }
  if (ctx.approval) record.approval = ctx.approval
  if (pre.decision?.auditLevel === 'requestResponse' && ctx.responseBody)
    record.responseBody = responseBody(
      ctx.responseBody,
      opts.maxBodyBytes,
      opts.masking ?? (defaultRules ??= defaultObjectRules()),
    )
  return record
}
