// Fetching an issuer's discovery document and keys, bounded: redirects are followed only
// within the same https origin (never to another host or to plain HTTP, which would let
// whoever answers there choose the keys), bodies are capped while they stream in, and every
// fetch has a deadline. An issuer that breaks any of this is unavailable, never trusted.
/** fetch, or one that trusts an issuer's own CA (makeFetch in oidc.ts). */
export type Fetch = (
  url: string,
  init?: {
    headers?: Record<string, string> | Headers
    signal?: AbortSignal
    redirect?: 'manual' | 'follow' | 'error'
    method?: string
  },
) => Promise<Response>

export const MAX_ISSUER_DOCUMENT_BYTES = 256 * 1024
export const ISSUER_FETCH_TIMEOUT_MS = 5_000
const MAX_REDIRECTS = 3

export class IssuerUnavailable extends Error {}

/** GETs `url` as JSON within the bounds above; throws IssuerUnavailable otherwise. */
export async function fetchIssuerJson(
  doFetch: Fetch,
  url: string,
  what: string,
  opts: { maxBytes?: number; timeoutMs?: number; accept?: string } = {},
): Promise<unknown> {
  const maxBytes = opts.maxBytes ?? MAX_ISSUER_DOCUMENT_BYTES
  const signal = AbortSignal.timeout(opts.timeoutMs ?? ISSUER_FETCH_TIMEOUT_MS)
  const origin = new URL(url).origin
  let current = url
  try {
    for (let hop = 0; ; hop++) {
      const res = await doFetch(current, {
        signal,
        redirect: 'manual',
        headers: { accept: opts.accept ?? 'application/json' },
      })
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => undefined)
        const location = res.headers.get('location')
        const next = location ? new URL(location, current) : undefined
        if (!next || next.origin !== origin || next.protocol !== 'https:')
          throw new IssuerUnavailable(
            `${what} ${current} redirects to ${next?.href ?? '(no location)'}: redirects are followed only within ${origin}`,
          )
        if (hop >= MAX_REDIRECTS)
          throw new IssuerUnavailable(`${what} ${url}: more than ${MAX_REDIRECTS} redirects`)
        current = next.href
        continue
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined)
        throw new IssuerUnavailable(`${what} ${current} answered HTTP ${res.status}`)
      }
      const text = await boundedText(res, maxBytes, `${what} ${current}`)
      try {
        return JSON.parse(text) as unknown
      } catch {
        throw new IssuerUnavailable(`${what} ${current} is not JSON`)
      }
    }
  } catch (err) {
    if (err instanceof IssuerUnavailable) throw err
    throw new IssuerUnavailable(`${what} ${current} failed: ${(err as Error).message}`)
  }
}

async function boundedText(res: Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  const tooLarge = (): IssuerUnavailable =>
    new IssuerUnavailable(`${what} is larger than ${maxBytes} bytes`)
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let total = 0
  // Leaving the loop early (throw) cancels the stream: the rest is never downloaded.
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength
    if (total > maxBytes) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
