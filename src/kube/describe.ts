// The human description of a request, built from its structured attributes: what approvers read
// in the inbox, the CLI and Slack, and what a 403 names. Every value a client chose (names,
// namespaces, selectors, commands, paths) is a quoted literal whose quotes, backslashes, control
// characters and bidirectional or invisible formatting characters are escaped, and the scope
// (`in namespace "x"` or `cluster-wide`) comes before any of them: a ClusterRoleBinding named
// `ci-view" in namespace "sandbox` reads `... cluster-wide named "ci-view\" in namespace \"sandbox"`.
//
//   delete namespaces cluster-wide named "prod"
//   list secrets cluster-wide
//   delete configmaps in namespace "prod" named "victim" (dry run)
//   create pods/exec in namespace "ns" named "box" command ["ls", "/"] container "app"
//   create nodes/proxy cluster-wide named "node-1" POST path "/run/ns/pod/c"
//   get path "/healthz"
import type { RequestInfo } from './request-info.ts'
import type { GoQuery } from './query.ts'

/**
 * Characters that change how text around them looks rather than being seen: C0 and C1 controls
 * (ESC starts CSI and OSC sequences, U+009B is an 8-bit CSI), DEL, format characters (bidi
 * overrides and isolates, zero-width characters, soft hyphen, tags), line and paragraph
 * separators, and lone surrogates.
 */
export const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu

/** `\u202e`-style escape of one character (code points above U+FFFF as `\u{1f600}`). */
export function escapeChar(c: string): string {
  const cp = c.codePointAt(0)!
  return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`
}

/** Every invisible character escaped (`\u001b`), everything else as it is. */
export function escapeInvisible(s: string): string {
  return s.replace(INVISIBLE, escapeChar)
}

/** A client-chosen value as a literal: `"a\"b"`, invisible characters escaped. */
export function quote(s: string): string {
  return `"${escapeInvisible(s.replace(/[\\"]/g, '\\$&'))}"`
}

/** Resource, group and path spellings are shown bare when they are plain, else quoted. */
const PLAIN = /^[A-Za-z0-9._\-/:~]+$/

/** One piece of a description: fixed words, a client-chosen literal, or a list of literals. */
export type Part = { text: string; literal?: true } | { list: readonly string[] }

const word = (text: string): Part => ({ text })
const literal = (text: string): Part => ({ text, literal: true })
const ident = (text: string): Part => (PLAIN.test(text) ? word(text) : literal(text))

/** The attributes a description is built from (a RequestInfo, or an approval's copy of it). */
export type DescribedRequest = Pick<
  RequestInfo,
  | 'isResourceRequest'
  | 'path'
  | 'verb'
  | 'authzVerb'
  | 'apiGroup'
  | 'resource'
  | 'subresource'
  | 'namespace'
  | 'name'
>

export interface DescribeOptions {
  /** The parsed query: dry run, force, selectors, exec parameters are described from it. */
  query?: GoQuery
  /** A create names its object in the body, not the path. */
  objectName?: string
  /** The HTTP method, described for proxy requests (GET and POST do different things there). */
  method?: string
  /** A dry run (default: `dryRun` in the query; a delete may say it in its DeleteOptions body). */
  dryRun?: boolean
}

const COLLECTION_VERBS = new Set(['list', 'watch', 'deletecollection'])
const CONNECT = new Set(['exec', 'attach', 'portforward'])

function first(query: GoQuery | undefined, key: string): string | undefined {
  return query?.get(key)?.[0]
}

const isTrue = (v: string | undefined): boolean => v === 'true' || v === '1'

/** The path of a proxy request below `.../proxy` (what the proxied server is asked for). */
export function proxySubpath(info: DescribedRequest): string | undefined {
  const marker = info.subresource === 'proxy' ? '/proxy' : info.verb === 'proxy' ? '' : undefined
  if (marker === undefined) return undefined
  if (info.verb === 'proxy') {
    const m =
      /^\/api[s]?\/(?:[^/]+\/)?[^/]+\/proxy\/(?:namespaces\/[^/]+\/)?[^/]+\/[^/]+(\/.*)?$/.exec(
        info.path,
      )
    return m?.[1] ?? '/'
  }
  const i = info.path.indexOf(`/${info.name}${marker}`)
  return i < 0 ? '/' : info.path.slice(i + info.name.length + 1 + marker.length) || '/'
}

function qualifiers(info: DescribedRequest, o: DescribeOptions): Part[] {
  const q = o.query
  const out: Part[] = []
  const sub = proxySubpath(info)
  if (sub !== undefined) {
    if (o.method) out.push(word(o.method))
    out.push(word('path'), literal(sub))
  }
  if (info.resource === 'pods' && CONNECT.has(info.subresource) && q) {
    const command = q.get('command') ?? []
    if (command.length) out.push(word('command'), { list: command })
    const container = first(q, 'container')
    if (container) out.push(word('container'), literal(container))
    const ports = q.get('ports') ?? []
    if (ports.length) out.push(word('ports'), literal(ports.join(',')))
    if (isTrue(first(q, 'tty'))) out.push(word('with a TTY'))
    if (isTrue(first(q, 'stdin'))) out.push(word('with stdin'))
  }
  if (COLLECTION_VERBS.has(info.verb)) {
    for (const key of ['labelSelector', 'fieldSelector']) {
      const v = first(q, key)
      if (v) out.push(word(key), literal(v))
    }
  }
  if (first(q, 'force') !== undefined && isTrue(first(q, 'force'))) out.push(word('(force)'))
  if (o.dryRun ?? q?.has('dryRun')) out.push(word('(dry run)'))
  return out
}

/** The description as parts, for sinks that style literals (HTML, Slack). */
export function describeParts(info: DescribedRequest, o: DescribeOptions = {}): Part[] {
  if (!info.isResourceRequest) return [word(info.verb), word('path'), literal(info.path)]
  const resource =
    (info.apiGroup ? `${info.resource}.${info.apiGroup}` : info.resource) +
    (info.subresource ? `/${info.subresource}` : '')
  const parts: Part[] = [ident(info.authzVerb), ident(resource)]
  // A namespace's own object (and its status/finalize) is cluster-scoped.
  const ownNamespace = info.resource === 'namespaces' && info.name === info.namespace
  if (info.namespace && !ownNamespace) parts.push(word('in namespace'), literal(info.namespace))
  else parts.push(word('cluster-wide'))
  const name = info.name || o.objectName
  if (name) parts.push(word('named'), literal(name))
  return [...parts, ...qualifiers(info, o)]
}

/** Plain text: literals quoted and escaped (403 messages, the CLI, logs). */
export function renderText(parts: readonly Part[]): string {
  return parts
    .map((p) =>
      'list' in p ? `[${p.list.map(quote).join(', ')}]` : p.literal ? quote(p.text) : p.text,
    )
    .join(' ')
}

/** `delete namespaces cluster-wide named "prod"`, `get path "/healthz"`. */
export function describeRequest(info: DescribedRequest, o: DescribeOptions = {}): string {
  return renderText(describeParts(info, o))
}
