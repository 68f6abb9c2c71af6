// Hand-written HTTP/1.1 over TLS to Gatehouse, for what no client library sends: requests with
// Upgrade headers on any path, bytes written in the same write as the request head or later,
// frames the client makes itself. Everything the server sends is kept.
import { readFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'

export interface RawConnection {
  readonly socket: TLSSocket
  /** Everything received so far. */
  received(): Buffer
  /** Resolves once the server closed the connection (true) or after timeoutMs (false). */
  closed(timeoutMs?: number): Promise<boolean>
  /** Resolves once `received()` contains `text` (rejects after timeoutMs). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<string>
  write(bytes: string | Buffer): void
}

export async function rawConnect(g: { url: string; caFile: string }): Promise<RawConnection> {
  const url = new URL(g.url)
  const socket = connect({
    host: url.hostname,
    port: Number(url.port),
    ca: readFileSync(g.caFile),
    ALPNProtocols: ['http/1.1'],
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
  socket.on('close', () => {
    ended = true
    notify()
  })
  const until = (done: () => boolean, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (done()) return resolve(true)
      const check = (): void => {
        if (!done()) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(true)
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        resolve(false)
      }, timeoutMs)
      waiters.add(check)
    })
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closed: (timeoutMs = 10_000) => until(() => ended, timeoutMs),
    async waitFor(text, timeoutMs = 10_000) {
      const seen = (): boolean => {
        const s = Buffer.concat(chunks).toString('latin1')
        return typeof text === 'string' ? s.includes(text) : text.test(s)
      }
      if (!(await until(() => seen() || ended, timeoutMs)) || !seen())
        throw new Error(
          `never received ${String(text)}; got: ${Buffer.concat(chunks).toString('latin1').slice(0, 2000)}`,
        )
      return Buffer.concat(chunks).toString('latin1')
    },
    write(bytes) {
      if (socket.writable) socket.write(bytes)
    },
  }
}

/** A request head: method, target, then headers; Host is added. */
export function requestHead(
  method: string,
  target: string,
  headers: Record<string, string> | [string, string][],
): string {
  const list = Array.isArray(headers) ? headers : Object.entries(headers)
  return (
    [`${method} ${target} HTTP/1.1`, 'Host: gatehouse', ...list.map(([k, v]) => `${k}: ${v}`)].join(
      '\r\n',
    ) + '\r\n\r\n'
  )
}

/** The status codes of every HTTP response head in `bytes` (a smuggled request's answer shows). */
export function statusLines(bytes: Buffer): number[] {
  return [...bytes.toString('latin1').matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
}
