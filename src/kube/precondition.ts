// A resourceVersion precondition added to a write whose decision read the object the API server
// said it would store: the write then applies to exactly the version policy judged, or fails
// with 409 Conflict. Without it, a second request racing between the dry run and the write
// (write skew, a JSON Patch `copy` from a field changed meanwhile, array positions shifted)
// could store an object no rule ever saw.
//
//   JSON Patch            [{"op":"replace","path":"/metadata/resourceVersion","value":"42"}, …]
//   merge, strategic,     {"metadata":{"resourceVersion":"42", …}, …}   (unless the body sets
//   apply, PUT                                                            its own)
//
// The API server compares a resourceVersion in the written object with the stored one and
// answers 409 Conflict when they differ (generic registry Update). Bodies Gatehouse did not
// decode (protobuf) are not changed.
import type { RequestObject } from './body.ts'

/** The body to send instead, or undefined to send the body as it came. */
export function withResourceVersion(
  decoded: RequestObject,
  verb: string,
  mediaType: string,
  resourceVersion: string,
): Buffer | undefined {
  if (!('value' in decoded) || resourceVersion === '') return undefined
  const value = decoded.value
  if (verb === 'patch' && mediaType === 'application/json-patch+json') {
    if (!Array.isArray(value)) return undefined
    const pin = { op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion }
    return Buffer.from(JSON.stringify([pin, ...(value as unknown[])]))
  }
  if (verb !== 'patch' && verb !== 'update') return undefined
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined
  const o = value as { metadata?: unknown }
  const meta = o.metadata
  if (meta !== undefined && (meta === null || typeof meta !== 'object' || Array.isArray(meta)))
    return undefined
  const m = (meta ?? {}) as Record<string, unknown>
  // the body's own precondition stands (the dry run already held it against the object)
  if (m['resourceVersion'] !== undefined && m['resourceVersion'] !== '') return undefined
  const metadata = { ...m, resourceVersion }
  // JSON is YAML: apply and YAML bodies go as JSON with their own media type
  return Buffer.from(JSON.stringify({ ...o, metadata }))
}
