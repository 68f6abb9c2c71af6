// What an approval is bound to: one request as the API server will execute it. The identity
// (name, groups, provenance), the cluster, the HTTP method, the normalised path (a proxy's
// subpath included), every query parameter as Go parses it, the Content-Type (it picks the
// decoder and the patch type) and the SHA-256 of the body. A request that differs in any of
// these is another request and needs its own approval: `exec -- ls` never runs `echo SWAPPED`,
// an approved `GET .../proxy/healthz` is not a `POST .../proxy/run/...`, a `dryRun=All` delete
// is not a delete.
//
// Left out, on purpose (docs/approvals.md):
// - `timeout` outside proxy requests: the API server's own deadline for the call, which changes
//   neither what runs nor what is returned (only whether it finishes in time); a held kubectl
//   retried with a longer --request-timeout finds its approval.
// - The method of exec, attach and port-forward: a WebSocket GET and a SPDY POST are the same
//   operation (kubectl falls back from one to the other after a refusal); both bind as CONNECT.
// Proxy requests bind the raw query byte for byte: the proxied server parses it, not Go.
import { createHash } from 'node:crypto'
import type { RequestInfo } from '../kube/request-info.ts'
import { canonicalQuery, parseGoQuery, rawQueryOf, type GoQuery } from '../kube/query.ts'

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

/** Query parameters that never change what a (non-proxy) request does or returns. */
export const UNBOUND_PARAMETERS = ['timeout'] as const

const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward'])

export interface BindingInput {
  identity: { name: string; groups: readonly string[]; extra: Record<string, readonly string[]> }
  cluster: string
  method: string
  info: RequestInfo
  /** The request target as sent upstream (path and query, the cluster prefix removed). */
  target: string
  contentType: string
  body: Buffer | undefined
}

/** The bound attributes, as shown to approvers and by `gatehouse policy test`. */
export interface BoundRequest {
  identity: string
  groups: string[]
  /** Provenance sent upstream (Impersonate-Extra), sorted by key. */
  extra: [string, string[]][]
  cluster: string
  /** The HTTP method; CONNECT for exec, attach and port-forward (GET or POST). */
  method: string
  /** The decoded, normalised path. */
  path: string
  /** Decoded parameters sorted by key, each with its values in order. */
  query: [string, string[]][]
  /** Proxy requests only: the query exactly as sent. */
  rawQuery?: string
  /** Parameters present in the request but not bound (see UNBOUND_PARAMETERS). */
  unbound: string[]
  contentType: string
  /** Hex SHA-256 of the body; '' without one. */
  bodySha256: string
}

export function isProxy(info: RequestInfo): boolean {
  return info.verb === 'proxy' || info.subresource === 'proxy'
}

export function bodyHash(body: Buffer | undefined): string {
  return body?.length ? sha256(body) : ''
}

/** The request's query, parsed as the API server does (request-info refused malformed ones). */
export function queryOf(target: string): GoQuery {
  const parsed = parseGoQuery(rawQueryOf(target))
  return 'query' in parsed ? parsed.query : new Map()
}

/** Content-Type as the API server's decoder chooser sees it: lower-case, no spaces. */
const normaliseContentType = (v: string): string => v.toLowerCase().replace(/\s+/g, '')

export function boundRequest(input: BindingInput): BoundRequest {
  const { info } = input
  const proxy = isProxy(info)
  const all = canonicalQuery(queryOf(input.target))
  const unbound = proxy ? [] : all.map(([k]) => k).filter((k) => isUnbound(k))
  const connect = info.isResourceRequest && CONNECT_SUBRESOURCES.has(info.subresource)
  return {
    identity: input.identity.name,
    groups: [...input.identity.groups].sort(),
    extra: Object.entries(input.identity.extra)
      .map(([k, v]): [string, string[]] => [k, [...v]])
      .sort(([a], [b]) => (a < b ? -1 : 1)),
    cluster: input.cluster,
    method: connect ? 'CONNECT' : input.method.toUpperCase(),
    path: info.path,
    query: all.filter(([k]) => !unbound.includes(k)),
    ...(proxy ? { rawQuery: rawQueryOf(input.target) } : {}),
    unbound,
    // without a body there is nothing to decode: a stray header must not split WS and SPDY exec
    contentType: input.body?.length ? normaliseContentType(input.contentType) : '',
    bodySha256: bodyHash(input.body),
  }
}

const isUnbound = (key: string): boolean => (UNBOUND_PARAMETERS as readonly string[]).includes(key)

/** The binding key: hex SHA-256 over the bound attributes in a fixed order. */
export function bindingKey(b: BoundRequest): string {
  return sha256(
    JSON.stringify([
      'v2',
      b.identity,
      b.groups,
      b.extra,
      b.cluster,
      b.method,
      b.path,
      b.query,
      b.rawQuery ?? null,
      b.contentType,
      b.bodySha256,
    ]),
  )
}
