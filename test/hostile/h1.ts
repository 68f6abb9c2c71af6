// HTTP/1.1 over TLS as the corpus needs it: exact bytes out, every response that comes back
// parsed (so an answer to a smuggled request shows), and whether the server closed.
import { readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { gunzipSync } from 'node:zlib'

export interface Response {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export interface Parsed {
  responses: Response[]
  /** Bytes after the last complete response (a session's frames after a 101). */
  rest: Buffer
  /** The last response is still incomplete. */
  partial: boolean
}

function findHeadEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf('\r\n\r\n', from)
  return i < 0 ? -1 : i + 4
}

/** Parses every complete response in `buf`; stops at a 101 (what follows is another protocol). */
export function parseResponses(buf: Buffer, closed: boolean, headRequest = false): Parsed {
  const responses: Response[] = []
  let o = 0
  for (;;) {
    if (o >= buf.length) return { responses, rest: Buffer.alloc(0), partial: false }
    const end = findHeadEnd(buf, o)
    if (end < 0) return { responses, rest: buf.subarray(o), partial: true }
    const head = buf
      .subarray(o, end - 4)
      .toString('latin1')
      .split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')
    if (!m) return { responses, rest: buf.subarray(o), partial: true }
    const headers: Record<string, string> = {}
    for (const line of head.slice(1)) {
      const c = line.indexOf(':')
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim()
    }
    const status = Number(m[1])
    if (status === 101) {
      responses.push({ status, headers, body: Buffer.alloc(0) })
      return { responses, rest: buf.subarray(end), partial: false }
    }
    if (status >= 100 && status < 200) {
      // 100 Continue and other interim answers: the final response follows
      o = end
      continue
    }
    const noBody =
      headRequest || status === 204 || status === 304 || (status >= 100 && status < 200)
    if (noBody) {
      responses.push({ status, headers, body: Buffer.alloc(0) })
      o = end
      continue
    }
    if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const parts: Buffer[] = []
      let p = end
      let done = false
      for (;;) {
        const le = buf.indexOf('\r\n', p)
        if (le < 0) break
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16)
        if (!Number.isFinite(size)) break
        if (size === 0) {
          const te = buf.indexOf('\r\n\r\n', le)
          if (te < 0 && buf.subarray(le, le + 4).toString() !== '\r\n\r\n') break
          p = (te < 0 ? le : te) + 4
          done = true
          break
        }
        if (le + 2 + size + 2 > buf.length) break
        parts.push(buf.subarray(le + 2, le + 2 + size))
        p = le + 2 + size + 2
      }
      if (!done) return { responses, rest: buf.subarray(o), partial: true }
      responses.push({ status, headers, body: Buffer.concat(parts) })
      o = p
      continue
    }
    const cl = headers['content-length']
    if (cl !== undefined) {
      const n = Number(cl)
      if (end + n > buf.length) return { responses, rest: buf.subarray(o), partial: true }
      responses.push({ status, headers, body: buf.subarray(end, end + n) })
      o = end + n
      continue
    }
    // no length: the body runs to the close
    if (!closed) return { responses, rest: buf.subarray(o), partial: true }
    responses.push({ status, headers, body: buf.subarray(end) })
    return { responses, rest: Buffer.alloc(0), partial: false }
  }
}

/** The body as text, gunzipped when the response says it is gzip. */
export function bodyText(r: Response): string {
  const enc = r.headers['content-encoding']?.toLowerCase()
  try {
    return (enc === 'gzip' ? gunzipSync(r.body) : r.body).toString('utf8')
  } catch {
    return r.body.toString('latin1')
  }
}

export interface Connection {
  write(bytes: Buffer): void
  received(): Buffer
  closed(): boolean
  /** Resolves when `check()` holds (true), the connection closed (check's value), or after ms (false). */
  until(check: () => boolean, ms: number): Promise<boolean>
  destroy(): void
}

export async function connectH1(g: { url: string; caFile: string }): Promise<Connection> {
  const url = new URL(g.url)
  const socket = connect({
    host: url.hostname,
    port: Number(url.port),
    ca: readFileSync(g.caFile),
    ALPNProtocols: ['http/1.1'],
    // keep reading what the server sends after a write fails on our side
    ...({ allowHalfOpen: true } as object),
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  const chunks: Buffer[] = []
  let ended = false
  const waiters = new Set<() => void>()
  const notify = (): void => waiters.forEach((w) => w())
  socket.on('data', (d: Buffer) => {
    chunks.push(d)
    notify()
  })
  socket.on('error', () => undefined)
  socket.on('end', () => {
    ended = true
    notify()
  })
  socket.on('close', () => {
    ended = true
    notify()
  })
  return {
    write(bytes) {
      if (socket.writable && !ended) socket.write(bytes)
    },
    received: () => Buffer.concat(chunks),
    closed: () => ended,
    until(check, ms) {
      return new Promise((resolve) => {
        if (check() || ended) return resolve(check())
        const timer = setTimeout(() => {
          waiters.delete(w)
          resolve(false)
        }, ms)
        const w = (): void => {
          if (!check() && !ended) return
          clearTimeout(timer)
          waiters.delete(w)
          resolve(check())
        }
        waiters.add(w)
      })
    },
    destroy: () => socket.destroy(),
  }
}
