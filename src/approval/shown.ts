// What approvers are shown of a request, complete or not at all: the body decoded (JSON and
// YAML as readBody decoded them, once and strictly (src/kube/body.ts), shown as JSON; protobuf
// and CBOR through the API server's dry run, which decodes them; other text as it is; small
// binary bodies as hex), masked, never cut. When
// Gatehouse cannot show the whole request it refuses to create the approval, with a Status
// saying why, rather than let someone approve what they could not read.
import { GatewayError } from '../errors/index.ts'
import type { RequestObject } from '../kube/body.ts'
import { maskKubernetesJson } from '../masking/objects.ts'
import { maskText } from '../masking/text.ts'

/** The largest body or dry-run answer approvers are shown; larger ones are refused. */
export const MAX_SHOWN_BYTES = 2 * 1024 * 1024

/** Binary bodies other than Kubernetes' own encodings are shown as hex up to this size. */
const MAX_HEX_BYTES = 64 * 1024

export interface ShownBody {
  contentType: string
  bytes: number
  /** How the text was made: decoded (JSON/YAML shown as JSON), text, hex, or via the dry run. */
  shownAs: 'decoded' | 'text' | 'hex' | 'dry-run'
  text: string
  /** Values masked in `text`. */
  masked: number
}

export type DryRunOutcome =
  { code: number; text: string; object?: unknown } | { error: string; tooLarge?: boolean }

const KUBERNETES_BINARY = /^application\/(vnd\.kubernetes\.protobuf|cbor)\b/i

const isUtf8 = (data: Buffer): boolean => Buffer.from(data.toString('utf8'), 'utf8').equals(data)

function hexDump(data: Buffer): string {
  const lines: string[] = []
  for (let i = 0; i < data.length; i += 16) {
    const row = data.subarray(i, i + 16)
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ')
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'))
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii.join('')}`)
  }
  return lines.join('\n')
}

function unshowable(message: string, tooLarge = false): GatewayError {
  return new GatewayError(tooLarge ? 'GW_APPROVAL_TOO_LARGE' : 'GW_APPROVAL_UNSHOWABLE', message)
}

/**
 * The body as approvers see it, and the decoded object (masked) highlights are taken from.
 * Throws GW_APPROVAL_TOO_LARGE or GW_APPROVAL_UNSHOWABLE when it cannot be shown whole.
 */
export function showBody(
  data: Buffer | undefined,
  contentType: string,
  decoded: RequestObject | undefined,
  dryRun: DryRunOutcome | undefined,
): { body?: ShownBody; object?: unknown } {
  if (!data?.length) return {}
  const base = { contentType, bytes: data.length }
  if (data.length > MAX_SHOWN_BYTES)
    throw unshowable(
      `Gatehouse shows approvers the whole request, and this body of ${data.length} bytes is over the ${MAX_SHOWN_BYTES} bytes it shows`,
      true,
    )
  if (KUBERNETES_BINARY.test(contentType)) {
    const object = dryRun && 'code' in dryRun && dryRun.code < 300 ? dryRun.object : undefined
    if (object === undefined)
      throw unshowable(
        `Gatehouse cannot show approvers this ${contentType.split(';')[0]} body: it decodes it through the API server's dry run, which ${dryRun === undefined ? 'this request has none of' : 'error' in dryRun ? `failed (${dryRun.error})` : `answered HTTP ${dryRun.code} instead of the object (${dryRun.text.slice(0, 300)})`}; send the request as JSON or YAML (for example kubectl create -f FILE)`,
      )
    return {
      body: {
        ...base,
        shownAs: 'dry-run',
        text: '(decoded by the API server: see the dry run)',
        masked: 0,
      },
      object,
    }
  }
  if (decoded && 'value' in decoded) {
    const m = maskKubernetesJson(decoded.value)
    return {
      body: {
        ...base,
        shownAs: 'decoded',
        text: JSON.stringify(m.value, null, 2),
        masked: m.masked,
      },
      object: m.value,
    }
  }
  if (isUtf8(data)) {
    const m = maskText(data.toString('utf8'))
    const masked = Object.values(m.counts).reduce((a, b) => a + b, 0)
    return { body: { ...base, shownAs: 'text', text: m.text, masked } }
  }
  if (data.length > MAX_HEX_BYTES)
    throw unshowable(
      `Gatehouse cannot show approvers this binary ${contentType || 'untyped'} body of ${data.length} bytes (it shows binary bodies as hex up to ${MAX_HEX_BYTES} bytes)`,
      true,
    )
  return { body: { ...base, shownAs: 'hex', text: hexDump(data), masked: 0 } }
}

/** The object approvers' highlights come from: what the dry run says it becomes, else the body. */
export function objectOf(dryRun: DryRunOutcome | undefined, bodyObject: unknown): unknown {
  if (dryRun && 'code' in dryRun && dryRun.code < 300 && dryRun.object !== undefined)
    return dryRun.object
  return bodyObject
}

/** Refuses an approval whose dry run answered more than approvers can be shown. */
export function checkDryRunShowable(dryRun: DryRunOutcome | undefined): void {
  if (dryRun && 'error' in dryRun && dryRun.tooLarge)
    throw unshowable(
      `Gatehouse shows approvers the whole request, and ${dryRun.error}; narrow the request (a selector, a name)`,
      true,
    )
}
