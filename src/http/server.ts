// The TLS listener: HTTP/2 by ALPN and HTTP/1.1 (upgrades need it), optional client certificates for mTLS, and
// Status answers even for requests Node's parser rejects (oversized or malformed headers).
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  createSecureServer,
  Http2ServerRequest,
  type Http2SecureServer,
  type ServerHttp2Session,
} from 'node:http2'
import { createServer, type Server } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { readFileSync } from 'node:fs'
import type { GatewayConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Duplex } from 'node:stream'
import { ensureLocalServingMaterial } from './local-ca.ts'
import { http1MessageProblem } from './message-checks.ts'

export interface Listener {
  readonly server: Server | Http2SecureServer
  readonly port: number
  readonly url: string
  /** PEM of the CA that clients must trust (the local CA, or none when a certificate is configured). */
  readonly caCertPem: string | undefined
  close(): Promise<void>
}

/** What the listener hands requests to (src/gateway.ts implements it). */
export interface GatewayHandlers {
  handleRequest(req: IncomingMessage, res: ServerResponse): void
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Answers a request the listener refuses before the pipeline (oversized headers, Expect, CONNECT), with its record. */
  refuseRequest(req: IncomingMessage, res: ServerResponse, error: GatewayError): void
  /**
   * Answers a connection whose request could not even be parsed (a malformed request line,
   * headers over the limit on HTTP/1.1) with a raw Status, and records the refusal.
   */
  refuseConnection(socket: Duplex, error: GatewayError): void
  /** Stop taking requests; let plain ones finish within graceMs; end watches and sessions. */
  shutdown(graceMs: number): Promise<void>
}

export async function listen(config: GatewayConfig, gateway: GatewayHandlers): Promise<Listener> {
  const tls = config.listen.tls
  const material = tls
    ? {
        certPem: readFileSync(tls.certFile, 'utf8'),
        keyPem: readFileSync(tls.keyFile, 'utf8'),
        caCertPem: undefined,
      }
    : ensureLocalServingMaterial(config.dataDir, config.listen.hostnames)
  const tlsOptions = {
    cert: material.certPem,
    key: material.keyPem,
    ...(config.listen.clientCAFile
      ? {
          ca: readFileSync(config.listen.clientCAFile, 'utf8'),
          requestCert: true,
          rejectUnauthorized: false,
        }
      : {}),
  }
  // HTTP/2 by ALPN for ordinary requests (kubectl and client-go multiplex watches over one
  // connection); HTTP/1.1 always, because exec, attach and port-forward upgrades need it.
  // allowHalfOpen: a client may send its request and close its sending side (shutdown(SHUT_WR));
  // it still gets its answer (RFC 9112 §9.6), and the connection closes after that answer.
  const server: Server | Http2SecureServer = config.listen.http2
    ? createSecureServer({
        ...tlsOptions,
        allowHTTP1: true,
        allowHalfOpen: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        settings: { maxHeaderListSize: config.limits.maxHeaderBytes },
      })
    : createServer({
        ...tlsOptions,
        allowHalfOpen: true,
        ALPNProtocols: ['http/1.1'],
        maxHeaderSize: config.limits.maxHeaderBytes,
        // Node's own check answers a bare 400; message-checks.ts answers with a Status
        requireHostHeader: false,
      })
  // Watches and log follows are long-lived; only the request head must arrive promptly. The
  // HTTP/1.1 side of the HTTP/2 server reads these from the server object too: maxHeaderSize
  // there is what makes limits.maxHeaderBytes hold for HTTP/1.1 (exec and attach) as well
  // (Node's default is 16 KiB).
  // maxHeadersCount 0: every field is seen, however many (Node keeps 2,000 by default and drops
  // the rest unseen, an Impersonate-User among them); limits.maxHeaderBytes bounds them.
  Object.assign(server, {
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 65_000,
    maxHeaderSize: config.limits.maxHeaderBytes,
    maxHeadersCount: 0,
    requireHostHeader: false,
    httpAllowHalfOpen: true,
  })
  const sockets = new Set<Socket>()
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    // Half-open is for HTTP/1.1 only: an HTTP/2 peer that closed its side is gone (its session
    // would otherwise wait for window updates that never come, holding every open stream).
    if (socket.alpnProtocol === 'h2') socket.allowHalfOpen = false
  })
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
    session.on('error', () => undefined)
  })
  const tooLarge = (): GatewayError =>
    new GatewayError(
      'GW_REQUEST_HEADERS_TOO_LARGE',
      `request headers exceed the limit of ${config.limits.maxHeaderBytes} bytes`,
    )
  // HTTP/1.1 answers go out in request order: a parse error behind requests still being
  // answered (a malformed pipelined request) is answered after them, not in their place.
  const unanswered = new WeakMap<Socket, Set<IncomingMessage>>()
  const afterAnswers = new WeakMap<Socket, () => void>()
  const track = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket
    const set = unanswered.get(socket) ?? new Set()
    unanswered.set(socket, set)
    set.add(req)
    const done = (): void => {
      if (!set.delete(req) || set.size) return
      const next = afterAnswers.get(socket)
      afterAnswers.delete(socket)
      next?.()
    }
    res.once('finish', done)
    res.once('close', done)
  }
  const invalid = (problem: string): GatewayError => new GatewayError('GW_REQUEST_INVALID', problem)
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const http1 = !(req instanceof Http2ServerRequest)
    if (http1) track(req, res)
    const problem = http1 ? http1MessageProblem(req) : undefined
    if (problem) {
      res.shouldKeepAlive = false
      return gateway.refuseRequest(req, res, invalid(problem))
    }
    // Node's HTTP/2 server does not enforce a header size; the limit is ours for both versions.
    let headerBytes = 0
    for (const h of req.rawHeaders) headerBytes += h.length + 2
    if (headerBytes > config.limits.maxHeaderBytes)
      return gateway.refuseRequest(req, res, tooLarge())
    gateway.handleRequest(req, res)
  })
  // Without these listeners Node answers by itself, with a bare body and no record.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
    gateway.refuseRequest(
      req,
      res,
      new GatewayError(
        'GW_REQUEST_EXPECTATION',
        `Gatehouse supports only 'Expect: 100-continue', not '${String(req.headers.expect).slice(0, 64)}'`,
      ),
    ),
  )
  // HTTP/2 CONNECT arrives as (req, res); HTTP/1.1 CONNECT as (req, socket, head).
  server.on('connect', (req: IncomingMessage, res: ServerResponse | Socket) => {
    const refusal = new GatewayError(
      'GW_REQUEST_METHOD',
      'Gatehouse does not tunnel CONNECT requests; Kubernetes has none',
    )
    if ('writeHead' in res) gateway.refuseRequest(req, res, refusal)
    else gateway.refuseConnection(res, refusal)
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const problem = http1MessageProblem(req)
    if (problem) return gateway.refuseConnection(socket, invalid(problem))
    gateway.handleUpgrade(req, socket, head)
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    // Bytes after a request that closes the connection (Connection: close, HTTP/1.0) are not
    // a request (RFC 9112 9.6): they are not read, and that request's answer is still owed.
    if (err.code === 'HPE_CLOSED_CONNECTION') return
    const refusal =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? tooLarge()
        : invalid(`malformed HTTP request (${err.code ?? 'parse error'})`)
    const pending = [...(unanswered.get(socket) ?? [])]
    // An error inside the body of the request being read is that request's answer; one after
    // complete requests waits until they are answered.
    if (pending.length === 0 || pending.some((r) => !r.complete))
      return gateway.refuseConnection(socket, refusal)
    afterAnswers.set(socket, () => gateway.refuseConnection(socket, refusal))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.listen.port, config.listen.address, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const host = config.listen.address.includes(':')
    ? `[${config.listen.address}]`
    : config.listen.address
  return {
    server,
    port,
    url: `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    caCertPem: material.caCertPem,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // HTTP/2 clients get GOAWAY at once (no new streams; running ones may finish).
      for (const session of sessions) session.close()
      await gateway.shutdown(config.limits.shutdownGraceMs)
      for (const session of sessions) session.destroy()
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}
