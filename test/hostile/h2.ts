// HTTP/2 requests exactly as a case writes them. Node's client refuses to send what the corpus
// is about (a missing or repeated pseudo-header, connection-specific fields, upper-case names,
// NUL in a value), so the runner lets Node's client run the connection (preface, SETTINGS,
// flow control, HPACK decoding of the answers) and replaces each HEADERS frame it writes with
// the case's own frames on that stream: HPACK literals without indexing, any name and value.
import { readFileSync } from 'node:fs'
import { connect as h2connect, constants, type ClientHttp2Session } from 'node:http2'
import { Duplex } from 'node:stream'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

/** RFC 7541 5.1: an integer with an N-bit prefix. */
function hpackInt(n: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1
  if (n < max) return Buffer.from([first | n])
  const out = [first | max]
  n -= max
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80)
    n >>= 7
  }
  out.push(n)
  return Buffer.from(out)
}

const hpackString = (s: Buffer): Buffer => Buffer.concat([hpackInt(s.length, 7, 0), s])

/** A header block of literal fields without indexing (RFC 7541 6.2.2), names and values as given (latin1). */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(
    fields.flatMap(([name, value]) => [
      Buffer.from([0x00]),
      hpackString(Buffer.from(name, 'latin1')),
      hpackString(Buffer.from(value, 'latin1')),
    ]),
  )
}

/** What one stream of the case sends, given the stream id Node chose. */
export type StreamFrames = (stream: number) => Buffer

/**
 * Node's client writes; HEADERS (and its CONTINUATIONs) on a stream are replaced. What the
 * server sends goes to Node's client, except acknowledgements of SETTINGS and PING frames a
 * case injected (Node's client would take an ACK of settings it never sent as a protocol error).
 */
class Rewriter extends Duplex {
  #pending = Buffer.alloc(0)
  #incoming = Buffer.alloc(0)
  #prefaceDone = false
  readonly #sent = { settings: 0, pings: 0 }
  readonly #acked = { settings: 0, pings: 0 }
  readonly #tls: TLSSocket
  readonly #replace: StreamFrames

  constructor(tls: TLSSocket, replace: StreamFrames) {
    super()
    this.#tls = tls
    this.#replace = replace
    tls.on('data', (d: Buffer) => {
      if (!this.push(this.#filter(d))) tls.pause()
    })
    tls.on('end', () => this.push(null))
    tls.on('close', () => this.destroy())
    tls.on('error', () => this.destroy())
  }

  /** Whole frames of `d` for Node's client, surplus ACKs left out. */
  #filter(d: Buffer): Buffer {
    this.#incoming = Buffer.concat([this.#incoming, d])
    const out: Buffer[] = []
    while (this.#incoming.length >= 9) {
      const len = this.#incoming.readUIntBE(0, 3)
      if (this.#incoming.length < 9 + len) break
      const f = this.#incoming.subarray(0, 9 + len)
      this.#incoming = this.#incoming.subarray(9 + len)
      const ack = (f[4]! & FLAG.ACK) !== 0
      const kind = f[3] === FRAME.SETTINGS ? 'settings' : f[3] === FRAME.PING ? 'pings' : undefined
      if (kind && ack) {
        if (this.#acked[kind] >= this.#sent[kind]) continue
        this.#acked[kind]++
      }
      out.push(f)
    }
    return Buffer.concat(out)
  }

  override _read(): void {
    this.#tls.resume()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.#pending = Buffer.concat([this.#pending, chunk])
    const out: Buffer[] = []
    if (!this.#prefaceDone) {
      if (this.#pending.length < 24) return done()
      out.push(this.#pending.subarray(0, 24))
      this.#pending = this.#pending.subarray(24)
      this.#prefaceDone = true
    }
    while (this.#pending.length >= 9) {
      const len = this.#pending.readUIntBE(0, 3)
      if (this.#pending.length < 9 + len) break
      const f = this.#pending.subarray(0, 9 + len)
      this.#pending = this.#pending.subarray(9 + len)
      const type = f[3]!
      const stream = f.readUInt32BE(5) & 0x7fffffff
      const ack = (f[4]! & FLAG.ACK) !== 0
      if (type === FRAME.SETTINGS && !ack) this.#sent.settings++
      if (type === FRAME.PING && !ack) this.#sent.pings++
      if (type === FRAME.HEADERS) out.push(this.#replace(stream))
      else if (type !== FRAME.CONTINUATION) out.push(f)
    }
    if (out.length === 0 || this.#tls.destroyed) return done()
    this.#tls.write(Buffer.concat(out), () => done())
  }

  override _final(done: () => void): void {
    this.#tls.end()
    done()
  }

  override _destroy(err: Error | null, done: (e: Error | null) => void): void {
    this.#tls.destroy()
    done(err)
  }
}

export interface H2Result {
  outcome: 'response' | 'reset' | 'closed'
  status?: number
  headers: Record<string, string>
  body: Buffer
  rstCode?: number
}

/**
 * Opens a connection, lets Node's client send `resets` streams it resets at once and then one
 * stream, each with the case's frames, and reports what the last stream got.
 */
export async function runH2(
  g: { url: string; caFile: string },
  replace: StreamFrames,
  opts: { resets?: number; timeoutMs: number },
): Promise<H2Result> {
  const url = new URL(g.url)
  const tls = tlsConnect({
    host: url.hostname,
    port: Number(url.port),
    ca: readFileSync(g.caFile),
    ALPNProtocols: ['h2'],
  })
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve)
    tls.once('error', reject)
  })
  const session: ClientHttp2Session = h2connect(`http://${url.host}`, {
    createConnection: () => new Rewriter(tls, replace),
  })
  session.on('error', () => undefined)
  let goaway = false
  session.on('goaway', () => (goaway = true))
  const gone = (): boolean => goaway || session.closed || session.destroyed
  const placeholder = { ':method': 'GET', ':path': '/', ':scheme': 'https' }
  try {
    for (let i = 0; i < (opts.resets ?? 0) && !session.closed && !session.destroyed; i++) {
      const s = session.request(placeholder, { endStream: true })
      s.on('error', () => undefined)
      s.close(constants.NGHTTP2_CANCEL)
    }
    return await new Promise<H2Result>((resolve) => {
      const result: H2Result = { outcome: 'closed', headers: {}, body: Buffer.alloc(0) }
      const chunks: Buffer[] = []
      let settled = false
      const finish = (): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        result.body = Buffer.concat(chunks)
        resolve(result)
      }
      const timer = setTimeout(finish, opts.timeoutMs)
      if (session.closed || session.destroyed) return finish()
      const s = session.request(placeholder, { endStream: true })
      s.on('error', () => undefined)
      s.on('response', (h) => {
        result.outcome = 'response'
        result.status = Number(h[':status'])
        for (const [k, v] of Object.entries(h))
          if (!k.startsWith(':')) result.headers[k] = Array.isArray(v) ? v.join(', ') : String(v)
      })
      s.on('data', (d: Buffer) => chunks.push(d))
      s.on('close', () => {
        if (result.outcome !== 'response') {
          // a stream the server reset, or one the connection's end (GOAWAY) took with it
          if (s.rstCode) result.rstCode = s.rstCode
          // a GOAWAY arrives with the reset: tell the two apart by the session's fate
          setTimeout(() => {
            result.outcome = gone() ? 'closed' : 'reset'
            finish()
          }, 50)
          return
        }
        finish()
      })
    })
  } finally {
    session.destroy()
    tls.destroy()
  }
}
