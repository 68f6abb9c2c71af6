// Request facts and how the answer went (src/request/facts.ts) → AuditRecord. Bodies are kept only as far as the
// decision's audit level asks, never beyond audit.maxBodyBytes, and always masked: JSON bodies
// structurally (a Secret's values, secret-looking env values...) and with the text detectors,
// other bodies with the text detectors byte for byte. A Secret's body that cannot be decoded
// (protobuf, YAML, truncated) is recorded as metadata only: fail closed.
import { coordinatesOf } from '../kube/request-info.ts'
import type { GatewayError } from '../errors/index.ts'
import { isSecretRequest } from '../kube/predicates.ts'
import { headerValue, type RequestFacts, type ResponseFacts } from '../request/facts.ts'
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

const SECRET_OMITTED = {
  omitted:
    'Secret bodies that Gatehouse cannot decode to mask (protobuf, YAML, truncated) are recorded as metadata only',
}

/** Who made the request, as records say it (claims only as far as the audit level keeps them). */
export function auditIdentity(facts: RequestFacts): AuditRecord['identity'] {
  const { identity, decision } = facts
  if (!identity) return null
  return {
    name: identity.name,
    groups: identity.groups,
    method: identity.method,
    ...(identity.issuer ? { issuer: identity.issuer } : {}),
    ...(identity.subject ? { subject: identity.subject } : {}),
    claims: decision?.obligations.audit === 'none' ? {} : selectClaims(identity.claims),
  }
}

/** Where the request came from: the address, and what kubectl says of itself. */
export function auditSource(facts: RequestFacts): AuditRecord['source'] {
  const source: AuditRecord['source'] = { address: facts.sourceAddress }
  if (facts.decision?.obligations.audit === 'none') return source
  const header = (name: string): string | undefined => headerValue(facts, name)?.slice(0, 1024)
  const ua = header('user-agent')
  const cmd = header('kubectl-command')
  const session = header('kubectl-session')
  if (ua) source.userAgent = ua
  if (cmd) source.kubectlCommand = cmd
  if (session) source.kubectlSession = session
  return source
}

export function buildAuditRecord(
  facts: RequestFacts,
  response: ResponseFacts | undefined,
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
  const { info, decision } = facts
  const level = decision?.obligations.audit ?? 'metadata'
  const header = (name: string): string | undefined => headerValue(facts, name)?.slice(0, 1024)
  const record: AuditRecord = {
    id: facts.id,
    time: new Date(facts.receivedAt).toISOString(),
    durationMs: Math.round(((opts.now ?? Date.now()) - facts.receivedAt) * 1000) / 1000,
    cluster: facts.cluster ?? null,
    identity: auditIdentity(facts),
    source: auditSource(facts),
    request: info
      ? {
          method: facts.method,
          target: maskRequestTarget(facts.target),
          isResourceRequest: info.isResourceRequest,
          verb: info.authzVerb,
          ...coordinatesOf(info),
        }
      : // Refused before it could be classified: what was asked is evidence all the same.
        {
          method: facts.method,
          target: maskRequestTarget(facts.target),
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
    principal: facts.principal ?? null,
    response: responseOf(facts, response, error),
  }
  if (error) record.error = { code: error.code, message: error.message }
  if (facts.approval) record.approval = facts.approval
  if (opts.bodies === false) return record
  if ((level === 'request' || level === 'requestResponse') && facts.body?.length) {
    record.requestBody = body(
      header('content-type') ?? '',
      facts.body,
      facts.body.length,
      opts.maxBodyBytes,
      rules,
      isSecretRequest(facts.info),
    )
  }
  if (level === 'requestResponse' && response?.body)
    record.responseBody = responseBody(response.body, opts.maxBodyBytes, rules)
  return record
}

/** What the cluster answered and how far the answer got to the client. */
function responseOf(
  facts: RequestFacts,
  response: ResponseFacts | undefined,
  error: GatewayError | undefined,
): AuditRecord['response'] {
  return {
    code: response?.status ?? 0,
    requestBytes: response?.requestBytes ?? facts.body?.length ?? 0,
    responseBytes: response?.responseBytes ?? 0,
    ...(response?.sentBytes !== undefined
      ? { sentBytes: response.sentBytes, complete: response.complete === true }
      : error?.code === 'GW_CLIENT_CLOSED'
        ? { sentBytes: 0, complete: false }
        : {}),
  }
}

/** A response head as kept in a record; a Secret's is captured only from masked output. */
function responseBody(
  r: NonNullable<ResponseFacts['body']>,
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
  facts: RequestFacts,
  response: ResponseFacts | undefined,
  error: GatewayError | undefined,
  opts: { maxBodyBytes: number; now?: number; masking?: ObjectMaskingRules },
): AuditRecord {
  const record: AuditRecord = {
    ...pre,
    durationMs: Math.round(((opts.now ?? Date.now()) - facts.receivedAt) * 1000) / 1000,
    response: responseOf(facts, response, error),
  }
  if (error) record.error = { code: error.code, message: error.message }
  if (facts.approval) record.approval = facts.approval
  if (pre.decision?.auditLevel === 'requestResponse' && response?.body)
    record.responseBody = responseBody(
      response.body,
      opts.maxBodyBytes,
      opts.masking ?? (defaultRules ??= defaultObjectRules()),
    )
  return record
}
