// The Kubernetes attributes of a request (verb, group, version, resource, subresource,
// namespace, name), computed exactly as kube-apiserver's RequestInfoFactory computes them
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so that policy decides on what the
// cluster will actually do. Anything where Gatehouse could disagree with the API server is
// refused, never guessed: a policy that sees a different resource than the cluster is a bypass.
// The differential e2e test compares this module with the API server's audit log.

import { parseGoQuery, unescapeStrict, type GoQuery } from './query.ts'

export interface RequestInfo {
  isResourceRequest: boolean
  /** The decoded path, as the API server sees it (no query). */
  path: string
  /** The API server's own verb: get, list, watch, create, update, patch, delete, deletecollection, proxy; lower-case HTTP method for non-resource requests. */
  verb: string
  /**
   * The verb policies match: the API server's verb, except that connect subresources (exec,
   * attach, portforward, proxy) and the proxy verb are `create` whatever the HTTP method:
   * kubectl reaches exec with GET (WebSocket) or POST (SPDY), and both run code in the pod.
   */
  authzVerb: string
  apiPrefix: string
  apiGroup: string
  apiVersion: string
  namespace: string
  resource: string
  subresource: string
  name: string
  parts: string[]
  /**
   * The query as the API server reads it (Go's url.ParseQuery, strictly: src/kube/query.ts),
   * parsed once here; every later reader takes its parameters from this.
   */
  query: URLSearchParams
}

export type RequestInfoResult = { ok: true; info: RequestInfo } | { ok: false; reason: string }

const API_PREFIXES = new Set(['api', 'apis'])
const GROUPLESS_PREFIXES = new Set(['api'])
const SPECIAL_VERBS = new Set(['proxy', 'watch'])
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize'])
const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'proxy'])
const METHOD_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
}
/** Longer paths are not Kubernetes requests; refusing them bounds the work per request. */
const MAX_TARGET_BYTES = 8192

const refuse = (reason: string): RequestInfoResult => ({ ok: false, reason })

/** The first value, as Go's Values.Get and the parameter codec use; several are refused. */
function single(query: GoQuery, key: string): string | undefined | { conflict: true } {
  const values = query.get(key)
  if (!values) return undefined
  if (values.length > 1 && new Set(values).size > 1) return { conflict: true }
  return values[0]
}

/**
 * fields.ParseSelector(...).RequiresExactMatch("metadata.name"), then IsValidPathSegmentName.
 * Returns the name ('' if none), or a refusal reason for selectors we will not second-guess.
 */
function nameFromFieldSelector(selector: string): { name: string } | { refuse: string } {
  // Escapes (\, \= \\) change term boundaries; no client needs them on metadata.name.
  if (selector.includes('\\')) return { refuse: 'the fieldSelector uses backslash escapes' }
  const terms = selector.split(',').sort() // the API server sorts terms before searching them
  for (const term of terms) {
    if (term === '') continue
    let split: { lhs: string; op: string; rhs: string } | undefined
    for (let i = 0; i < term.length && !split; i++) {
      for (const op of ['!=', '==', '=']) {
        if (term.startsWith(op, i)) {
          split = { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) }
          break
        }
      }
    }
    if (!split) return { refuse: `the fieldSelector term '${term.slice(0, 60)}' has no operator` }
    if (split.lhs === 'metadata.name' && split.op !== '!=') {
      const valid =
        split.rhs !== '.' &&
        split.rhs !== '..' &&
        !split.rhs.includes('/') &&
        !split.rhs.includes('%')
      return { name: valid ? split.rhs : '' }
    }
  }
  return { name: '' }
}

/** ListOptions fields whose decoding can fail, which makes the API server drop the fieldSelector. */
function listOptionsProblem(query: GoQuery): string | undefined {
  for (const key of ['limit', 'timeoutSeconds']) {
    const v = query.get(key)?.[0]
    if (v !== undefined && !/^[+-]?\d{1,18}$/.test(v))
      return `${key}=${v.slice(0, 20)} is not an integer`
  }
  const labels = query.get('labelSelector')?.[0]
  // A conservative grammar of label selectors: anything else might fail to parse upstream.
  if (labels !== undefined && labels !== '' && !/^[\w./!=,() -]*$/.test(labels))
    return 'the labelSelector has characters outside the selector grammar'
  return undefined
}

/**
 * Parse a request as the API server will. `rawUrl` is the request-target exactly as received
 * (origin-form path and query), after Gatehouse removed its own /clusters/<name> prefix.
 */
export function parseRequestInfo(method: string, rawUrl: string): RequestInfoResult {
  if (rawUrl.length > MAX_TARGET_BYTES)
    return refuse(`the request path is longer than ${MAX_TARGET_BYTES} bytes`)
  if (!rawUrl.startsWith('/')) return refuse('the request target is not an absolute path')
  // Visible ASCII only: anything else is interpreted differently by different HTTP stacks.
  if (!/^[\x21-\x7e]*$/.test(rawUrl))
    return refuse('the request target contains spaces, control or non-ASCII characters')
  if (rawUrl.includes('#')) return refuse("the request target contains '#'")
  if (rawUrl.includes('\\')) return refuse('the request target contains a backslash')
  const q = rawUrl.indexOf('?')
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q)
  const parsed = parseGoQuery(q < 0 ? '' : rawUrl.slice(q + 1))
  if ('error' in parsed) return refuse(parsed.error)
  const query = parsed.query
  const params = queryParams(query)

  const rawSegments = rawPath.split('/').slice(1)
  if (rawSegments.length > 1 && rawSegments.at(-1) === '') rawSegments.pop() // one trailing slash is trimmed upstream too
  const segments: string[] = []
  for (const raw of rawSegments) {
    if (raw === '' && rawSegments.length > 1)
      return refuse("the path contains an empty segment ('//')")
    // An encoded '/' or '%' would split or re-decode differently in proxies and in the API server.
    if (/%(2f|25|5c|00)/i.test(raw))
      return refuse(`the path segment '${raw.slice(0, 40)}' encodes '/', '%', '\\' or NUL`)
    const seg = unescapeStrict(raw)
    if (seg === undefined)
      return refuse(`the path segment '${raw.slice(0, 40)}' has malformed percent-encoding`)
    if (seg === '.' || seg === '..') return refuse('the path contains a dot segment')
    if (/[\x00-\x20\x7f?#]/.test(seg))
      return refuse(
        `the path segment '${raw.slice(0, 40)}' decodes to a space, control character, '?' or '#'`,
      )
    segments.push(seg)
  }
  const parts = segments.filter((s) => s !== '')
  const path =
    '/' +
    segments.join('/') +
    (rawPath.endsWith('/') && segments.length > 0 && rawPath !== '/' ? '/' : '')

  const upperMethod = method.toUpperCase()
  if (method !== upperMethod)
    return refuse(`the HTTP method '${method.slice(0, 16)}' is not upper-case`)
  const nonResource = (): RequestInfoResult => {
    if (!(upperMethod in METHOD_VERBS) && upperMethod !== 'OPTIONS')
      return refuse(`the HTTP method ${upperMethod.slice(0, 16)} is not used by Kubernetes clients`)
    const verb = upperMethod.toLowerCase()
    return {
      ok: true,
      info: {
        isResourceRequest: false,
        path,
        verb,
        authzVerb: verb,
        apiPrefix: '',
        apiGroup: '',
        apiVersion: '',
        namespace: '',
        resource: '',
        subresource: '',
        name: '',
        parts: [],
        query: params,
      },
    }
  }

  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return nonResource()
  const apiPrefix = parts[0]!
  let rest = parts.slice(1)
  let apiGroup = ''
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    if (rest.length < 3) return nonResource()
    apiGroup = rest[0]!
    rest = rest.slice(1)
  }
  const apiVersion = rest[0]!
  rest = rest.slice(1)

  let verb: string
  if (SPECIAL_VERBS.has(rest[0]!)) {
    if (rest.length < 2) return refuse(`'/${rest[0]}/' must be followed by a resource`)
    verb = rest[0]!
    rest = rest.slice(1)
  } else {
    const v = METHOD_VERBS[upperMethod]
    if (!v) return refuse(`the HTTP method ${upperMethod.slice(0, 16)} has no Kubernetes verb`)
    verb = v
  }

  let namespace = ''
  if (rest[0] === 'namespaces') {
    if (rest.length > 1) {
      namespace = rest[1]!
      if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2)
    }
  }

  let resource = ''
  let name = ''
  let subresource = ''
  if (rest.length >= 3 && verb !== 'proxy') subresource = rest[2]!
  if (rest.length >= 2) name = rest[1]!
  if (rest.length >= 1) resource = rest[0]!

  if (name === '' && verb === 'get') {
    const watch = single(query, 'watch')
    if (typeof watch === 'object') return refuse('the query has conflicting watch values')
    if (watch !== undefined && !/^(true|false|1|0)$/i.test(watch))
      return refuse(`watch=${watch.slice(0, 20)} is not true, false, 1 or 0`)
    verb = watch !== undefined && !/^(false|0)$/i.test(watch) ? 'watch' : 'list'
    const problem = listOptionsProblem(query)
    if (problem) return refuse(problem)
    const selector = single(query, 'fieldSelector')
    if (typeof selector === 'object')
      return refuse('the query has conflicting fieldSelector values')
    if (selector !== undefined) {
      const r = nameFromFieldSelector(selector)
      if ('refuse' in r) return refuse(r.refuse)
      name = r.name
    }
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection'

  const authzVerb = verb === 'proxy' || CONNECT_SUBRESOURCES.has(subresource) ? 'create' : verb
  return {
    ok: true,
    info: {
      isResourceRequest: true,
      path,
      verb,
      authzVerb,
      apiPrefix,
      apiGroup,
      apiVersion,
      namespace,
      resource,
      subresource,
      name,
      parts: rest,
      query: params,
    },
  }
}

/** The Go-parsed parameters as URLSearchParams (values in the order sent). */
export function queryParams(query: GoQuery): URLSearchParams {
  const out = new URLSearchParams()
  for (const [key, values] of query) for (const v of values) out.append(key, v)
  return out
}

/** What a request names: group, version, resource, subresource, namespace and name. */
export interface RequestCoordinates {
  apiGroup: string
  apiVersion: string
  resource: string
  subresource: string
  namespace: string
  name: string
}

/**
 * The coordinates of a request, as policy (CEL `request`), audit records and approvals all
 * name them (each adds its own verb and target around them).
 */
export function coordinatesOf(info: RequestCoordinates): RequestCoordinates {
  return {
    apiGroup: info.apiGroup,
    apiVersion: info.apiVersion,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name: info.name,
  }
}
