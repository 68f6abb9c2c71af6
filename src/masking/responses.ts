// Masking what the API server returns, by what the request is (never by how its URL is spelt:
// the request's attributes come from src/kube/request-info.ts, which computes them as the API
// server does). Every resource request's response is masked for callers whose policy does not
// turn masking off; non-resource requests (discovery, /version, /openapi) carry no object data.
//
// Object data is masked decoded, so Gatehouse asks for JSON (the client's Accept is rewritten,
// `as=Table` kept) and never guesses inside protobuf; pod logs and proxied responses are text
// streams. A response Gatehouse cannot decode is refused (fail closed).
import { Transform, type TransformCallback } from 'node:stream'
import type { IncomingHttpHeaders } from 'node:http'
import type { RequestInfo } from '../kube/request-info.ts'
import { JsonMaskingTransform, type JsonShape } from './json-stream.ts'
import type { TypeHint } from './objects.ts'
import type { MaskingProfile } from './profile.ts'
import { StreamMaskers, type Clock } from './stream-set.ts'

export interface MaskPlan {
  /** Decoded objects (JSON) or a text stream (pod logs, proxied responses). */
  body: 'json' | 'text'
  shape: JsonShape
  /** The response stays open (watches, `logs -f`): its head goes out at once. */
  streaming: boolean
  /** The type objects without their own kind get (core lists leave it out of items). */
  typeHint?: TypeHint
}

/** Core kinds with structural rules: a response for these resources is typed by the request too. */
const CORE_TYPES: Record<string, TypeHint> = {
  secrets: { kind: 'Secret', apiVersion: 'v1' },
  configmaps: { kind: 'ConfigMap', apiVersion: 'v1' },
}

/** How a request's response is masked; undefined: nothing in it to mask. */
export function maskPlanFor(
  info: RequestInfo | undefined,
  query: URLSearchParams,
): MaskPlan | undefined {
  if (!info?.isResourceRequest) return undefined
  const follow = query.get('follow') === 'true' || query.get('follow') === '1'
  if (info.subresource === 'log') return { body: 'text', shape: 'object', streaming: follow }
  // proxied responses can be anything the pod or service serves
  if (info.subresource === 'proxy' || info.verb === 'proxy')
    return { body: 'text', shape: 'object', streaming: true }
  const hint = info.apiGroup === '' && !info.subresource ? CORE_TYPES[info.resource] : undefined
  const shape: JsonShape =
    info.verb === 'watch'
      ? 'watch'
      : info.verb === 'list' || info.verb === 'deletecollection'
        ? 'list'
        : 'object'
  return {
    body: 'json',
    shape,
    streaming: shape === 'watch',
    ...(hint ? { typeHint: hint } : {}),
  }
}

/**
 * The client's Accept with every media type that is not JSON (protobuf, CBOR, YAML) turned into
 * JSON with the same parameters (`as=Table;v=v1;g=meta.k8s.io` kept), duplicates dropped.
 */
export function jsonAccept(accept: string | undefined): string {
  const out: string[] = []
  for (const range of (accept ?? '').split(',')) {
    const [type = '', ...params] = range.split(';').map((s) => s.trim())
    if (!type) continue
    const lower = type.toLowerCase()
    const json =
      lower === 'application/json' || lower === '*/*' || lower === 'application/*'
        ? range.trim()
        : ['application/json', ...params].join(';')
    if (!out.includes(json)) out.push(json)
  }
  return out.length ? out.join(',') : 'application/json'
}

export class UnmaskableResponse extends Error {}

/** A transform that masks a response body, and what it counted. */
export interface BodyMasker {
  readonly transform: Transform
  readonly masked: () => number
  /** Objects left out (collections: filter). */
  readonly dropped?: () => number
  /** Objects sent unmasked by `keep`, and masked objects `notice` counted. */
  readonly kept?: () => number
  readonly noticed?: () => number
}

/**
 * The masker for one response, chosen by what arrived: JSON is decoded, text is masked as a
 * stream; anything else cannot be masked and is refused.
 */
export function bodyMaskerFor(
  plan: MaskPlan,
  profile: MaskingProfile,
  status: number,
  headers: IncomingHttpHeaders,
  maxObjectBytes: number,
  opts: {
    drop?: (object: unknown) => boolean
    mask?: boolean
    keep?: (object: unknown) => boolean
    notice?: (object: unknown) => boolean
  } = {},
): BodyMasker {
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase()
  if (encoding !== 'identity')
    throw new UnmaskableResponse(`the response is ${encoding}-encoded and cannot be masked`)
  const type = String(headers['content-type'] ?? '').toLowerCase()
  const isJson = /^application\/([a-z0-9.+-]*\+)?json\b/.test(type)
  if (plan.body === 'json' && isJson) {
    const t = new JsonMaskingTransform({
      // an error answers a watch with one Status, not a stream
      shape: plan.shape === 'watch' && status !== 200 ? 'list' : plan.shape,
      rules: profile.objects,
      ...(plan.typeHint ? { typeHint: plan.typeHint } : {}),
      maxObjectBytes,
      ...(opts.drop ? { drop: opts.drop } : {}),
      ...(opts.mask === false ? { mask: false } : {}),
      ...(opts.keep ? { keep: opts.keep } : {}),
      ...(opts.notice ? { notice: opts.notice } : {}),
    })
    return {
      transform: t,
      masked: () => t.masked,
      dropped: () => t.dropped,
      kept: () => t.kept,
      noticed: () => t.noticed,
    }
  }
  if (plan.body === 'text' || type.startsWith('text/') || isJson) {
    const t = new TextMaskingTransform(profile, plan.streaming)
    return { transform: t, masked: () => t.masked }
  }
  throw new UnmaskableResponse(
    `the API server answered with ${type || 'no content type'}, which Gatehouse cannot mask`,
  )
}

/**
 * A text stream through one stream masker (stream.ts). A streaming response (a log follow, a
 * proxied stream) lets held text out when a hold bound runs out; a finite one holds until its
 * end, so its masking is exactly that of the whole body.
 */
export class TextMaskingTransform extends Transform {
  readonly #maskers: StreamMaskers<'body'>

  constructor(profile: MaskingProfile, streaming: boolean, clock?: Clock) {
    super()
    this.#maskers = new StreamMaskers({
      masking: profile,
      clock,
      onRelease: (_body, data) => {
        if (!this.destroyed) this.push(data)
      },
    })
    if (!streaming) this.#maskers.stop()
  }

  /** Values masked so far. */
  get masked(): number {
    return this.#maskers.masked
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#maskers.push('body', chunk)
    cb(null, out.length ? out : undefined)
  }

  override _flush(cb: TransformCallback): void {
    this.#maskers.stop()
    const rest = this.#maskers.end('body')
    cb(null, rest.length ? rest : undefined)
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    this.#maskers.stop()
    cb(e)
  }
}
