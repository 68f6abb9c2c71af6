// The hostile-input corpus (test/hostile/corpus/*.yaml): cases as data, one file per category.
// A file lists `cases` written out, and `families`: one case template and the values it is
// instantiated with (`each`), so that a list of path spellings or header variants stays a list
// of data. This module loads and checks the files; the e2e runner
// (test/e2e/gateway/hostile-corpus.test.ts) sends each case to a real Gatehouse.
//
// Placeholders, expanded when a case runs (test/hostile/expand.ts): {{token}} the case's
// credential, {{ciToken}} the allowed CI identity's token, {{ns}} the run's namespace, {{name}}
// an object name unique to the case, {{host}} Gatehouse's host:port, {{smuggle}} a marker that
// must never reach the API server, {{repeat:N:text}} text N times. In a family, ${var} is the
// item's value of var (a whole-string ${var} keeps the value's type).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'

export const CATEGORIES = [
  'jwt',
  'headers',
  'framing',
  'paths',
  'bodies',
  'upgrades',
  'http2',
] as const
export type Category = (typeof CATEGORIES)[number]

/** Who the case authenticates as. */
export type CredentialSpec =
  | 'none'
  /** A GitHub Actions token of octo-org/app: the identity the corpus policy allows. */
  | 'ci'
  /** A valid GitHub Actions token of octo-org/denied: authenticated, denied by policy. */
  | 'denied'
  /** A token the API server minted for a ServiceAccount: authenticated, denied by policy. */
  | 'serviceaccount'
  | { jwt: JwtSpec }
  /** A literal token text (placeholders expanded). */
  | { raw: string }
  /** A ServiceAccount token minted for another audience. */
  | { serviceAccount: { name: string; audience: string } }

export interface JwtSpec {
  /** Protected header members over the default {alg: RS256, typ: JWT, kid: <issuer key>}. */
  header?: Record<string, unknown>
  /** Claims over the GitHub Actions template (`base: none`: only these). Values "$now+N" become numbers, "$issuer" the issuer URL. */
  claims?: Record<string, unknown>
  base?: 'github' | 'none'
  /** Template claims to leave out. */
  omit?: string[]
  /**
   * rs256: the issuer's key. none: alg none, empty signature. hs256-pem: HMAC keyed with the
   * issuer's public key PEM (key confusion). foreign: RS256 with a key the issuer never
   * published. flip: a valid signature with one bit changed. strip: no signature.
   */
  sign?: 'rs256' | 'none' | 'hs256-pem' | 'foreign' | 'flip' | 'strip'
  /** Sign this header text instead of the header object (RS256, issuer key). */
  headerText?: string
  /** Sign this payload text instead of the claims (RS256, issuer key). */
  payloadText?: string
  /** Nest: the signed payload is the JWT described by this spec (JWS in JWS, cty JWT). */
  nested?: JwtSpec
  /** After signing, replace these claims in the payload and keep the old signature. */
  tamper?: Record<string, unknown>
}

/** A structured HTTP/1.1 request, written out as bytes by the runner. */
export interface HttpSpec {
  method: string
  target: string
  /** Header lines in order, after Host and Authorization. */
  headers?: [string, string][]
  /** `header` (default): Authorization: Bearer; `subprotocol`: the WebSocket bearer subprotocol; `none`. */
  auth?: 'header' | 'subprotocol' | 'none'
  /** Omit the Host header the runner adds by default. */
  noHost?: boolean
  /** UTF-8 text; bodyBytes: latin1 (each char one byte, for invalid UTF-8); bodyJson: JSON.stringify. */
  body?: string
  bodyBytes?: string
  bodyJson?: unknown
  bodyBase64?: string
  /** Gzip the body bytes (and say so with Content-Encoding: gzip). */
  gzip?: boolean
  /** Content-Length: the body's length (default when there is a body), none, or this text. */
  contentLength?: string
  /** Send the body chunked (Transfer-Encoding: chunked) in chunks of this size. */
  chunked?: number
}

/** A later write on the same connection (`sameWrite`: appended to the request's own write). */
export type Write =
  | { delayMs?: number; sameWrite?: boolean; raw: string }
  | { delayMs?: number; sameWrite?: boolean; ws: WsFrameSpec }
  | { delayMs?: number; sameWrite?: boolean; spdy: SpdyFrameSpec }
  /** Wait for this text from the server before the next write. */
  | { waitFor: string }

export interface WsFrameSpec {
  opcode: number
  /** latin1 text (so \x00 is channel 0). */
  payload?: string
  /** Payload of this many bytes of 'x' after `payload`. */
  padTo?: number
  fin?: boolean
  rsv?: number
  unmasked?: boolean
  /** A 64-bit length field with this value (the payload is not sent). */
  length64?: string
}

export type SpdyFrameSpec =
  | { syn: number; headers: Record<string, string>; fin?: boolean }
  | { data: number; text: string; fin?: boolean }
  /** A SYN_STREAM whose header block is raw (deflated with the SPDY dictionary, no validation). */
  | { synRaw: number; block: SpdyRawBlock }
  | { rst: number; status: number }
  | { ping: number }
  | { goaway: number }

export type SpdyRawBlock =
  { bomb: number } | { count: number } | { name: string; value: string } | { oversized: number }

/** An HTTP/2 request, sent exactly as written: HPACK literals, no validation by the client. */
export interface H2Spec {
  method?: string
  path?: string
  /** Regular header fields after the default pseudo-headers (and authorization). */
  headers?: [string, string][]
  /** Every field exactly as sent, pseudo-headers included: nothing is added. */
  exactHeaders?: [string, string][]
  auth?: 'header' | 'none'
  body?: string
  /** Body of this many bytes of 'x'. */
  bodySize?: number
  /** Leave the stream open after the headers and body (a body that never ends). */
  endStream?: boolean
  /** Frames written before the request's HEADERS (on its stream unless they name one). */
  before?: H2FrameSpec[]
  /** Frames written after the request, on its stream unless they name one. */
  frames?: H2FrameSpec[]
  /** HEADERS without END_HEADERS, then this many CONTINUATION frames that never end the block. */
  continuationFlood?: { count: number; size: number }
  /** Rapid reset: open and reset this many streams (HEADERS then RST_STREAM), then send one ordinary request whose answer is the case's. */
  resetStreams?: number
  /** Split the header block into CONTINUATION frames of this size. */
  continuationSize?: number
}

export type H2FrameSpec =
  | { type: 'data'; data?: string; size?: number; endStream?: boolean; stream?: number }
  | { type: 'rst_stream'; code: number; stream?: number }
  | { type: 'headers'; headers: [string, string][]; endStream?: boolean; stream?: number }
  | { type: 'continuation'; count: number; size: number; stream?: number }
  | { type: 'window_update'; increment: number; stream?: number }
  | { type: 'priority'; dependsOn: number; stream?: number }
  | { type: 'settings'; settings: [number, number][] }
  | { type: 'ping'; count: number }
  | { type: 'raw'; frameType: number; flags: number; stream: number; payloadHex: string }

export interface RequestSpec {
  /** Exact bytes (latin1; YAML escapes \r \n \x..), placeholders expanded. */
  raw?: string
  http?: HttpSpec
  h2?: H2Spec
  /** Writes after the request (HTTP/1.1 and upgrades). */
  then?: Write[]
}

export interface Expectation {
  /** HTTP status of the first response (101 for a switch of protocols). */
  status?: number
  /** What the connection or stream did instead of answering: closed (HTTP/1.1, HTTP/2 GOAWAY) or reset (HTTP/2 RST_STREAM). */
  outcome?: 'response' | 'closed' | 'reset'
  /** The Status reason. */
  reason?: string
  /** A regular expression the Status message matches. */
  message?: string
  /** The record's error code in Gatehouse's audit store. */
  error?: string
  /**
   * The answer is the API server's own, relayed as it is (a 404 for a path it does not serve,
   * the kubelet's text for a refused upgrade): its body need not be a Status.
   */
  upstreamBody?: boolean
  /** For a 2xx answer: the kind of the object returned. */
  kind?: string
  /** Gatehouse closes the connection after its answer (HTTP/1.1). */
  closed?: boolean
  /** Exactly this many HTTP responses on the connection (a smuggled request's answer shows). */
  responses?: number
  /** The statuses of every response on the connection, in order (pipelined requests). */
  statuses?: number[]
  /** After the case, the harness admin reads this path and gets 404: the object was not stored. */
  absent?: string
  /** After the case, the object at this path has no label `forbidden` (the policy's condition held). */
  unlabelled?: string
  /** The server sends this text at some point (a session's output). */
  receives?: string
  /** A WebSocket session ends with a close frame of this code and a Status on the error channel. */
  wsClose?: number
  wsStatus?: number
  /** No audit record can be expected (nothing was answered). Default: expected whenever a response came. */
  audit?: false
}

export interface Case {
  id: string
  category: Category
  description: string
  credential: CredentialSpec
  request: RequestSpec
  expect: Expectation
  /** The file it came from. */
  source: string
}

interface FamilyFile {
  id: string
  description: string
  credential?: CredentialSpec
  request: RequestSpec
  expect: Expectation
  /** Values of variables an item does not set. */
  defaults?: Record<string, unknown>
  each: Record<string, unknown>[]
}

interface CorpusFile {
  category: Category
  cases?: Omit<Case, 'category' | 'source'>[]
  families?: FamilyFile[]
}

const VAR = /\$\{(\w+)\}/g

/** The template with every ${var} replaced by the item's value. */
export function instantiate<T>(template: T, vars: Record<string, unknown>, where: string): T {
  const value = (name: string): unknown => {
    if (!(name in vars)) throw new Error(`${where}: \${${name}} has no value`)
    return vars[name]
  }
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = /^\$\{(\w+)\}$/.exec(v)
      if (whole) return value(whole[1]!)
      return v.replace(VAR, (_m, name: string) => {
        const x = value(name)
        return typeof x === 'string' ? x : JSON.stringify(x)
      })
    }
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [walk(k) as string, walk(x)]))
    return v
  }
  return walk(template) as T
}

function expandFamily(f: FamilyFile, category: Category, source: string): Case[] {
  if (!Array.isArray(f.each) || f.each.length === 0)
    throw new Error(`${source}: family ${f.id} has no 'each' items`)
  return f.each.map((item, i) => {
    const where = `${source}: family ${f.id} item ${i}`
    // an item's values may name the family's defaults (`headers: '${websocket}'`)
    const all = instantiate({ ...f.defaults, ...item }, f.defaults ?? {}, where)
    const {
      expect: override,
      credential,
      ...vars
    } = all as {
      expect?: Expectation
      credential?: CredentialSpec
    } & Record<string, unknown>
    const c = instantiate(
      {
        id: f.id,
        description: f.description,
        request: f.request,
        expect: f.expect,
      },
      vars,
      where,
    )
    return {
      id: c.id,
      category,
      description: c.description,
      credential: credential ?? (f.credential ? instantiate(f.credential, vars, where) : 'ci'),
      request: c.request,
      expect: {
        ...c.expect,
        ...(override ? instantiate(override, vars, where) : {}),
      },
      source,
    }
  })
}

const ID = /^[a-z0-9][a-z0-9.-]*$/

/** Why a case cannot run as written, or undefined. */
export function caseProblem(c: Case): string | undefined {
  if (!ID.test(c.id)) return `id '${c.id}' is not lower-case letters, digits, '.' and '-'`
  if (!c.id.startsWith(`${c.category}-`)) return `id '${c.id}' does not start with '${c.category}-'`
  if (!c.description || c.description.length < 10) return 'it has no description of the attack'
  if (JSON.stringify(c).includes('${')) return 'it holds a ${var} no family item gave a value'
  const kinds = [c.request.raw, c.request.http, c.request.h2].filter((x) => x !== undefined)
  if (kinds.length !== 1) return 'its request is not exactly one of raw, http, h2'
  const e = c.expect
  const outcome = e.outcome ?? 'response'
  if (outcome === 'response' && e.status === undefined) return 'it expects a response but no status'
  if (outcome !== 'response' && e.status !== undefined) return `it expects ${outcome} and a status`
  if (outcome === 'reset' && !c.request.h2) return 'only HTTP/2 streams are reset'
  if (e.status !== undefined && (e.status < 100 || e.status > 599))
    return 'its status is no HTTP status'
  return undefined
}

export function loadCorpus(dir: string): Case[] {
  const cases: Case[] = []
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const source = `corpus/${file}`
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as CorpusFile
    if (!CATEGORIES.includes(doc.category))
      throw new Error(
        `${source}: category '${String(doc.category)}' is not one of ${CATEGORIES.join(', ')}`,
      )
    for (const c of doc.cases ?? [])
      cases.push({ ...c, credential: c.credential ?? 'ci', category: doc.category, source })
    for (const f of doc.families ?? []) cases.push(...expandFamily(f, doc.category, source))
  }
  const seen = new Set<string>()
  for (const c of cases) {
    const problem = caseProblem(c)
    if (problem) throw new Error(`${c.source}: case ${c.id}: ${problem}`)
    if (seen.has(c.id)) throw new Error(`${c.source}: case id ${c.id} appears twice`)
    seen.add(c.id)
  }
  return cases
}
