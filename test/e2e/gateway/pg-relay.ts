// A TCP relay in front of the test PostgreSQL that can be cut and restored: an outage of the
// audit store as a stopped server or a broken network shows it (refused and reset connections).
import { createServer, connect, type Server, type Socket } from 'node:net'

export const PG_URL =
  process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Refuses and resets connections while cut, as a stopped server would. */
export async function pgRelay(): Promise<{
  url: string
  cut(): void
  restore(): void
  close(): Promise<void>
}> {
  const target = new URL(PG_URL)
  const sockets = new Set<Socket>()
  let down = false
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy()
      return
    }
    const upstream = connect(Number(target.port || 5432), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const url = new URL(PG_URL)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    url: url.toString(),
    cut() {
      down = true
      for (const s of sockets) s.destroy()
    },
    restore() {
      down = false
    },
    close: () => new Promise((r) => server.close(() => r())),
  }
}
