// Which client headers go upstream. Credentials and impersonation are Gatehouse's alone; hop-by-hop
// headers belong to one connection (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
])

const NEVER_FORWARDED = new Set([
  'authorization',
  'host',
  'audit-id',
  'x-remote-user',
  'x-remote-group',
  // Expect: 100-continue is answered by Gatehouse's listener, and the body is read whole
  // before anything goes upstream: the expectation is met (RFC 9110 10.1.1), and undici
  // refuses to send the field at all (a 502 for curl's every large POST).
  'expect',
])

/** Bearer tokens carried in the WebSocket subprotocol list (browsers cannot set headers). */
export const WS_BEARER_PREFIX = 'base64url.bearer.authorization.k8s.io.'

export function isImpersonationHeader(name: string): boolean {
  return name.toLowerCase().startsWith('impersonate-')
}

/**
 * The client's raw headers (name/value pairs, order and repeats kept: kubectl repeats
 * X-Stream-Protocol-Version) minus credentials, impersonation and, unless `keepUpgrade`,
 * hop-by-hop headers. The WebSocket bearer subprotocol is removed from the offered list.
 */
export function forwardableHeaders(rawHeaders: readonly string[], keepUpgrade: boolean): string[] {
  const out: string[] = []
  const connectionTokens = new Set<string>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const t of rawHeaders[i + 1]!.split(',')) connectionTokens.add(t.trim().toLowerCase())
    }
  }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    let value = rawHeaders[i + 1]!
    const lower = name.toLowerCase()
    if (
      NEVER_FORWARDED.has(lower) ||
      isImpersonationHeader(lower) ||
      lower.startsWith('x-remote-extra-')
    )
      continue
    if (keepUpgrade && (lower === 'connection' || lower === 'upgrade')) {
      out.push(name, value)
      continue
    }
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) describe this hop only.
    if (lower.startsWith(':')) continue
    if (HOP_BY_HOP.has(lower) || (connectionTokens.has(lower) && !keepUpgrade)) continue
    if (lower === 'sec-websocket-protocol') {
      value = value
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p && !p.startsWith(WS_BEARER_PREFIX))
        .join(', ')
      if (!value) continue
    }
    out.push(name, value)
  }
  return out
}

/** Response headers to relay to the client: hop-by-hop ones removed. */
export function relayableResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k.toLowerCase())) continue
    out[k] = v
  }
  return out
}

/**
 * Upstream headers with the response media type chosen by Gatehouse: every Accept and
 * Accept-Encoding (and any other name in `drop`, lower-case) removed, then `Accept: <accept>`
 * (given the client's joined Accept) when it returns one. Gatehouse reads what it asks for
 * this way uncompressed, in a type it can decode.
 */
export function withAccept(
  src: readonly string[],
  accept: (clientAccept: string | undefined) => string | undefined,
  drop: readonly string[] = [],
): string[] {
  const out: string[] = []
  let client: string | undefined
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!.toLowerCase()
    if (name === 'accept') client = client === undefined ? src[i + 1]! : `${client},${src[i + 1]!}`
    else if (name !== 'accept-encoding' && !drop.includes(name)) out.push(src[i]!, src[i + 1]!)
  }
  const chosen = accept(client)
  if (chosen !== undefined) out.push('Accept', chosen)
  return out
}

/** RFC 7234 warn-value with code 299 (kubectl prints the text as `Warning: ...`). */
export function warningValue(text: string): string {
  return `299 - "${text.replace(/["\\]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`
}
