// A corpus case made concrete: placeholders expanded, credentials minted, HTTP/1.1 requests,
// WebSocket and SPDY frames written out as the bytes the runner sends.
import { createHmac, randomBytes } from 'node:crypto'
import { constants, deflateSync, gzipSync } from 'node:zlib'
import {
  encodeFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  HeaderCompressor,
  SPDY3_HEADER_DICTIONARY,
} from '../../src/spdy/index.ts'
import type { OidcIssuer } from '../harness/oidc-issuer.ts'
import type {
  Case,
  CredentialSpec,
  HttpSpec,
  JwtSpec,
  SpdyFrameSpec,
  SpdyRawBlock,
  WsFrameSpec,
} from './corpus.ts'

export interface Placeholders {
  token: string
  ciToken: string
  /** The CI token in base64url, as the WebSocket bearer subprotocol carries it. */
  ciTokenB64: string
  ns: string
  name: string
  host: string
  smuggle: string
}

/** The prefix of every {{smuggle}} marker: no API server audit event may ever carry it. */
export const SMUGGLE_PREFIX = 'hostile-smuggled-'

/** Placeholders replaced in `text`: the named ones first, so that a repeat may hold them. */
export function expandText(text: string, p: Placeholders): string {
  const named = text.replace(/\{\{(\w+)\}\}/g, (m, name: string) => {
    if (name in p) return p[name as keyof Placeholders]
    throw new Error(`unknown placeholder ${m}`)
  })
  return named.replace(/\{\{repeat:(\d+):([^}]*)\}\}/g, (_m, n: string, what: string) =>
    what.repeat(Number(n)),
  )
}

/** Latin1: each character one byte (YAML's \xNN escapes give raw bytes). */
export function bytesOf(text: string): Buffer {
  for (const ch of text)
    if (ch.codePointAt(0)! > 0xff)
      throw new Error(
        `a raw request holds ${JSON.stringify(ch)}, beyond one byte; use body for UTF-8`,
      )
  return Buffer.from(text, 'latin1')
}

/** A DNS-label object name unique to the case. */
export function objectName(id: string): string {
  const tail = createHmac('sha256', 'n').update(id).digest('hex').slice(0, 6)
  return `${id
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 50)
    .replace(/-+$/, '')}-${tail}`
}

const b64 = (v: string): string => Buffer.from(v, 'utf8').toString('base64url')

function claimValue(v: unknown, issuer: string, now: number): unknown {
  if (typeof v !== 'string') return v
  if (v.startsWith('$issuer')) return issuer + v.slice('$issuer'.length)
  const m = /^\$now([+-]\d+)?$/.exec(v)
  if (m) return now + Number(m[1] ?? 0)
  return v
}

/** The GitHub Actions claims the harness issuer mints, for octo-org/app. */
function githubClaims(issuer: string, now: number): Record<string, unknown> {
  return {
    jti: `${now}-${randomBytes(6).toString('hex')}`,
    sub: 'repo:octo-org/app:ref:refs/heads/main',
    aud: 'gatehouse',
    ref: 'refs/heads/main',
    repository: 'octo-org/app',
    repository_owner: 'octo-org',
    run_id: '987654321',
    workflow: 'deploy',
    job_workflow_ref: 'octo-org/app/.github/workflows/deploy.yml@refs/heads/main',
    iss: issuer,
    nbf: now - 5,
    iat: now - 5,
    exp: now + 600,
  }
}

export async function mintJwt(
  spec: JwtSpec,
  issuer: OidcIssuer,
  p: Omit<Placeholders, 'token'>,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const expand = (v: unknown): unknown =>
    typeof v === 'string' ? claimValue(expandText(v, { ...p, token: '' }), issuer.url, now) : v
  if (spec.nested) {
    const inner = await mintJwt(spec.nested, issuer, p)
    return issuer.mintRaw(
      JSON.stringify({ alg: 'RS256', typ: 'JWT', cty: 'JWT', kid: 'key-1', ...spec.header }),
      inner,
    )
  }
  if (spec.headerText !== undefined || spec.payloadText !== undefined) {
    const header = spec.headerText ?? JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'key-1' })
    const payload = spec.payloadText ?? JSON.stringify(githubClaims(issuer.url, now))
    const sub = (t: string): string =>
      expandText(t, { ...p, token: '' })
        .replace(/"\$issuer"/g, JSON.stringify(issuer.url))
        .replace(/"\$now([+-]\d+)?"/g, (_m, d?: string) => String(now + Number(d ?? 0)))
    return issuer.mintRaw(sub(header), sub(payload))
  }
  const claims: Record<string, unknown> = spec.base === 'none' ? {} : githubClaims(issuer.url, now)
  for (const k of spec.omit ?? []) delete claims[k]
  for (const [k, v] of Object.entries(spec.claims ?? {})) claims[k] = expand(v)
  const header = Object.fromEntries(
    Object.entries(spec.header ?? {}).map(([k, v]) => [k, expand(v)]),
  )
  const token = await signed(spec, claims, header, issuer)
  if (!spec.tamper) return token
  const [h, payload, sig] = token.split('.') as [string, string, string]
  const changed = { ...(JSON.parse(Buffer.from(payload, 'base64url').toString()) as object) }
  for (const [k, v] of Object.entries(spec.tamper))
    (changed as Record<string, unknown>)[k] = expand(v)
  return `${h}.${b64(JSON.stringify(changed))}.${sig}`
}

async function signed(
  spec: JwtSpec,
  claims: Record<string, unknown>,
  header: Record<string, unknown>,
  issuer: OidcIssuer,
): Promise<string> {
  switch (spec.sign ?? 'rs256') {
    case 'rs256':
      return issuer.mint(claims, { header })
    case 'foreign':
      return issuer.mint(claims, { header, signWith: 'foreign' })
    case 'none':
      return issuer.mint(claims, { alg: 'none', header })
    case 'hs256-pem':
      return issuer.mint(claims, { alg: 'HS256', header })
    case 'strip': {
      const t = await issuer.mint(claims, { header })
      return t.slice(0, t.lastIndexOf('.') + 1)
    }
    case 'flip': {
      const t = await issuer.mint(claims, { header })
      const sig = Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url')
      sig[sig.length >> 1]! ^= 0x01
      return `${t.slice(0, t.lastIndexOf('.') + 1)}${sig.toString('base64url')}`
    }
  }
}

export interface Tokens {
  ci: string
  denied: string
  serviceaccount: string
  /** A ServiceAccount token for an audience. */
  serviceAccount(name: string, audience: string): Promise<string>
}

export async function credentialToken(
  spec: CredentialSpec,
  tokens: Tokens,
  issuer: OidcIssuer,
  p: Omit<Placeholders, 'token'>,
): Promise<string> {
  if (spec === 'none') return ''
  if (spec === 'ci') return tokens.ci
  if (spec === 'denied') return tokens.denied
  if (spec === 'serviceaccount') return tokens.serviceaccount
  if ('raw' in spec) return expandText(spec.raw, { ...p, token: '' })
  if ('serviceAccount' in spec)
    return tokens.serviceAccount(spec.serviceAccount.name, spec.serviceAccount.audience)
  return mintJwt(spec.jwt, issuer, p)
}

export { b64 as base64url }

/** The bytes of a structured HTTP/1.1 request. */
export function httpBytes(spec: HttpSpec, p: Placeholders, hasCredential: boolean): Buffer {
  const x = (s: string): string => expandText(s, p)
  let body: Buffer | undefined
  if (spec.body !== undefined) body = Buffer.from(x(spec.body), 'utf8')
  else if (spec.bodyBytes !== undefined) body = bytesOf(x(spec.bodyBytes))
  else if (spec.bodyJson !== undefined) body = Buffer.from(x(JSON.stringify(spec.bodyJson)), 'utf8')
  else if (spec.bodyBase64 !== undefined) body = Buffer.from(spec.bodyBase64, 'base64')
  if (body && spec.gzip) body = gzipSync(body)
  const lines = [`${spec.method} ${x(spec.target)} HTTP/1.1`]
  if (!spec.noHost) lines.push(`Host: ${p.host}`)
  const auth = spec.auth ?? 'header'
  const headers = (spec.headers ?? []).map(([k, v]) => [x(k), x(v)] as const)
  if (hasCredential && auth === 'header') lines.push(`Authorization: Bearer ${p.token}`)
  if (hasCredential && auth === 'subprotocol') {
    const i = headers.findIndex(([k]) => k.toLowerCase() === 'sec-websocket-protocol')
    const carrier = `base64url.bearer.authorization.k8s.io.${b64(p.token)}`
    if (i < 0) lines.push(`Sec-WebSocket-Protocol: ${carrier}`)
    else headers[i] = [headers[i]![0], `${carrier}, ${headers[i]![1]}`]
  }
  for (const [k, v] of headers) lines.push(`${k}: ${v}`)
  if (spec.gzip) lines.push('Content-Encoding: gzip')
  let payload = body ?? Buffer.alloc(0)
  if (spec.chunked && body) {
    lines.push('Transfer-Encoding: chunked')
    const parts: Buffer[] = []
    for (let i = 0; i < body.length; i += spec.chunked) {
      const c = body.subarray(i, i + spec.chunked)
      parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'))
    }
    parts.push(Buffer.from('0\r\n\r\n'))
    payload = Buffer.concat(parts)
  } else {
    const cl = spec.contentLength ?? 'auto'
    if (cl === 'auto' && body) lines.push(`Content-Length: ${body.length}`)
    else if (cl !== 'auto' && cl !== 'none') lines.push(`Content-Length: ${x(cl)}`)
  }
  return Buffer.concat([bytesOf(lines.join('\r\n') + '\r\n\r\n'), payload])
}

/** A client WebSocket frame (masked unless told otherwise). */
export function wsFrame(spec: WsFrameSpec): Buffer {
  let payload = bytesOf(spec.payload ?? '')
  if (spec.padTo !== undefined && payload.length < spec.padTo)
    payload = Buffer.concat([payload, Buffer.alloc(spec.padTo - payload.length, 0x78)])
  const b0 = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode
  const maskBit = spec.unmasked ? 0 : 0x80
  let head: Buffer
  if (spec.length64 !== undefined) {
    head = Buffer.alloc(10)
    head[1] = maskBit | 127
    head.writeBigUInt64BE(BigInt(spec.length64), 2)
    payload = Buffer.alloc(0)
  } else if (payload.length < 126) head = Buffer.from([0, maskBit | payload.length])
  else if (payload.length < 65536) {
    head = Buffer.alloc(4)
    head[1] = maskBit | 126
    head.writeUInt16BE(payload.length, 2)
  } else {
    head = Buffer.alloc(10)
    head[1] = maskBit | 127
    head.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  head[0] = b0
  if (spec.unmasked) return Buffer.concat([head, payload])
  const mask = randomBytes(4)
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!))])
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/** A header block deflated as the first of its context, with no validation (hostile blocks). */
function rawBlock(spec: SpdyRawBlock): Buffer {
  let raw: Buffer
  if ('bomb' in spec) raw = encodeHeaderBlock({ streamtype: 'stdin', x: 'x'.repeat(spec.bomb) })
  else if ('oversized' in spec)
    raw = encodeHeaderBlock({
      streamtype: 'stdin',
      x: randomBytes(spec.oversized >> 1).toString('hex'),
    })
  else if ('count' in spec)
    raw = Buffer.concat([
      u32(spec.count),
      u32(10),
      Buffer.from('streamtype'),
      u32(5),
      Buffer.from('stdin'),
    ])
  else {
    const n = Buffer.from(spec.name, 'latin1')
    const v = Buffer.from(spec.value, 'latin1')
    raw = Buffer.concat([u32(1), u32(n.length), n, u32(v.length), v])
  }
  return deflateSync(raw, {
    dictionary: SPDY3_HEADER_DICTIONARY,
    finishFlush: constants.Z_SYNC_FLUSH,
  })
}

/** SPDY frames for one connection: SYN_STREAM header blocks share one compression context. */
export class SpdyWriter {
  readonly #compressor = new HeaderCompressor()

  async frame(spec: SpdyFrameSpec): Promise<Buffer> {
    if ('syn' in spec)
      return encodeFrame({
        type: 'syn_stream',
        streamId: spec.syn,
        associatedStreamId: 0,
        priority: 0,
        slot: 0,
        flags: spec.fin ? FLAG_FIN : 0,
        headerBlock: await this.#compressor.compress(spec.headers),
      })
    if ('synRaw' in spec)
      return encodeFrame({
        type: 'syn_stream',
        streamId: spec.synRaw,
        associatedStreamId: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headerBlock: rawBlock(spec.block),
      })
    if ('data' in spec)
      return encodeFrame({
        type: 'data',
        streamId: spec.data,
        flags: spec.fin ? FLAG_FIN : 0,
        data: bytesOf(spec.text),
      })
    if ('rst' in spec)
      return encodeFrame({ type: 'rst_stream', streamId: spec.rst, status: spec.status })
    if ('ping' in spec) return encodeFrame({ type: 'ping', id: spec.ping })
    return encodeFrame({ type: 'goaway', lastGoodStreamId: spec.goaway, status: 0 })
  }

  close(): void {
    this.#compressor.close()
  }
}

export type { Case }
