// The fake kubelet: a TLS server speaking the kubelet's real streaming endpoints, so that
// logs, exec, attach and port-forward travel client → kube-apiserver → kubelet for real.
// Only the container runtime behind it is fake (see shell.ts).
import { appendFileSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { KubeClient } from '../kube-client.ts'
import type { CertPair } from '../pki.ts'
import {
  acceptWebSocket,
  isWebSocketUpgrade,
  REMOTE_COMMAND_WS_PROTOCOLS,
  serveWebSocketCommand,
} from './exec-websocket.ts'
import { isSpdyUpgrade, logSpdyArrivals, serveSpdyCommand } from './exec-spdy.ts'
import { serveLogs } from './logs.ts'
import { ANNOTATION_ATTACH, containerEnv, lookupPod, type PodView } from './pods.ts'
import {
  servePortForwardSpdy,
  servePortForwardWebSocket,
  PORT_FORWARD_WS_PROTOCOL,
} from './portforward.ts'
import { execOptionsFrom } from './remote-command.ts'

/** One request the kubelet saw; also appended as a JSON line to the requests log for tests. */
export interface KubeletRequest {
  method: string
  path: string
  query: string
  /** The Upgrade header: 'websocket', 'SPDY/3.1' or absent. */
  upgrade: string | undefined
  /** Offered subprotocols (WebSocket) or stream protocol versions (SPDY). */
  offered: string[]
}

export interface FakeKubelet {
  readonly port: number
  readonly requests: KubeletRequest[]
  close(): Promise<void>
}

function offeredProtocols(req: IncomingMessage): string[] {
  const raw =
    req.headers['sec-websocket-protocol'] ?? req.headersDistinct['x-stream-protocol-version'] ?? []
  return (Array.isArray(raw) ? raw : [raw])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)
}

type Route =
  | { kind: 'logs'; namespace: string; pod: string; container: string }
  | { kind: 'exec' | 'attach'; namespace: string; pod: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string }

export function parseKubeletPath(pathname: string): Route | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent)
  const [kind, namespace, pod, container] = parts
  if (!namespace || !pod) return undefined
  if (
    (kind === 'containerLogs' || kind === 'exec' || kind === 'attach') &&
    container &&
    parts.length === 4
  ) {
    return { kind: kind === 'containerLogs' ? 'logs' : kind, namespace, pod, container }
  }
  if (kind === 'portForward' && parts.length === 3) return { kind, namespace, pod }
  return undefined
}

function plain(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain' })
  res.end(text)
}

function rejectUpgrade(socket: Duplex, code: number, text: string): void {
  socket.end(
    `HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  )
}

export async function startFakeKubelet(opts: {
  cert: CertPair
  client: KubeClient
  requestLog?: string
  /** The address to listen on (the Node's InternalIP); 127.0.0.1 unless given. */
  address?: string
}): Promise<FakeKubelet> {
  const requests: KubeletRequest[] = []
  // beside the request log: what each SPDY session delivered (tests of what must never arrive)
  logSpdyArrivals(opts.requestLog && opts.requestLog.replace(/\.jsonl$/, '') + '-spdy.jsonl')
  const record = (req: IncomingMessage, url: URL): void => {
    const entry: KubeletRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.search,
      upgrade: req.headers.upgrade,
      offered: offeredProtocols(req),
    }
    requests.push(entry)
    if (opts.requestLog) appendFileSync(opts.requestLog, JSON.stringify(entry) + '\n')
  }
  const sockets = new Set<Duplex>()
  const server: Server = createServer({
    cert: readFileSync(opts.cert.certFile),
    key: readFileSync(opts.cert.keyFile),
  })
  server.on('connection', (s: Duplex) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })

  const findPod = async (route: Route): Promise<PodView | undefined> =>
    lookupPod(opts.client, route.namespace, route.pod)

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    record(req, url)
    if (url.pathname === '/healthz') return plain(res, 200, 'ok')
    const route = parseKubeletPath(url.pathname)
    if (!route) return plain(res, 404, `404 page not found: ${url.pathname}`)
    if (route.kind !== 'logs') return plain(res, 400, 'Upgrade request required')
    void findPod(route).then(
      (pod) =>
        pod
          ? serveLogs(pod, route.container, url.searchParams, res)
          : plain(res, 404, `pod ${route.namespace}/${route.pod} not found`),
      () => plain(res, 500, 'pod lookup failed'),
    )
  })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    record(req, url)
    socket.on('error', () => undefined)
    const route = parseKubeletPath(url.pathname)
    if (!route || route.kind === 'logs')
      return rejectUpgrade(socket, 404, `404 page not found: ${url.pathname}`)
    void findPod(route).then(
      async (pod) => {
        if (!pod) return rejectUpgrade(socket, 404, `pod ${route.namespace}/${route.pod} not found`)
        if (route.kind === 'portForward') {
          if (isWebSocketUpgrade(req)) {
            const offered = (req.headers['sec-websocket-protocol'] ?? '')
              .split(',')
              .map((p) => p.trim())
            if (!offered.includes(PORT_FORWARD_WS_PROTOCOL))
              return rejectUpgrade(socket, 400, 'unsupported port-forward WebSocket protocol')
            return servePortForwardWebSocket(await acceptWebSocket(req, socket, head), pod)
          }
          if (isSpdyUpgrade(req)) return servePortForwardSpdy(req, socket, head, pod)
          return rejectUpgrade(socket, 400, 'unsupported upgrade')
        }
        const options = execOptionsFrom(url.searchParams)
        const argv =
          route.kind === 'exec'
            ? url.searchParams.getAll('command')
            : (JSON.parse(pod.annotations[ANNOTATION_ATTACH] ?? '["sh"]') as string[])
        const env = containerEnv(pod, route.container)
        if (isWebSocketUpgrade(req)) {
          const offered = (req.headers['sec-websocket-protocol'] ?? '')
            .split(',')
            .map((p) => p.trim())
          if (
            !offered.some((p) => (REMOTE_COMMAND_WS_PROTOCOLS as readonly string[]).includes(p))
          ) {
            return rejectUpgrade(socket, 400, 'no supported remote command subprotocol offered')
          }
          return serveWebSocketCommand(await acceptWebSocket(req, socket, head), options, argv, env)
        }
        if (isSpdyUpgrade(req)) return serveSpdyCommand(req, socket, head, options, argv, env)
        return rejectUpgrade(socket, 400, 'unsupported upgrade')
      },
      () => rejectUpgrade(socket, 500, 'pod lookup failed'),
    )
  })

  await new Promise<void>((resolve) => server.listen(0, opts.address ?? '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
