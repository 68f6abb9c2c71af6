// The TLS listener: HTTP/2 by ALPN and HTTP/1.1 (upgrades need it), optional client certificates for mTLS, and
// Status answers even for requests Node's parser rejects (oversized or malformed headers).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2'
import { createServer, type Server } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import type { GatewayConfig } from '../config/index.ts'
import { GatewayError, rawStatusResponse, toKubeStatus } from '../errors/index.ts'
import type { Gateway } from '../gateway.ts'
import { ensureLocalServingMaterial } from './local-ca.ts'

export interface Listener {
  readonly server: Server | Http2SecureServer
  readonly port: number
  readonly url: string
  /** PEM of the CA that clients must trust (the local CA, or none when a certificate is configured). */
  readonly caCertPem: string | undefined
  close(): Promise<void>
}

export async function listen(config: GatewayConfig, gateway: Gateway): Promise<Listener> {
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
  const server: Server | Http2SecureServer = config.listen.http2
    ? createSecureServer({
        ...tlsOptions,
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        settings: { maxHeaderListSize: config.limits.maxHeaderBytes },
      })
    : createServer({
        ...tlsOptions,
        ALPNProtocols: ['http/1.1'],
        maxHeaderSize: config.limits.maxHeaderBytes,
      })
  // Watches and log follows are long-lived; only the request head must arrive promptly. (The
  // HTTP/1.1 fallback of the HTTP/2 server reads these from the server object too.)
  Object.assign(server, { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 })
  const sockets = new Set<Socket>()
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
    session.on('error', () => undefined)
  })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Node's HTTP/2 server does not enforce a header size; the limit is ours for both versions.
    let headerBytes = 0
    for (const h of req.rawHeaders) headerBytes += h.length + 2
    if (headerBytes > config.limits.maxHeaderBytes) {
      const status = toKubeStatus(
        new GatewayError(
          'GW_REQUEST_HEADERS_TOO_LARGE',
          `request headers exceed the limit of ${config.limits.maxHeaderBytes} bytes`,
        ),
      )
      res.writeHead(status.code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(status))
      return
    }
    gateway.handleRequest(req, res)
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    gateway.handleUpgrade(req, socket, head),
  )
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    const code =
      err.code === 'HPE_HEADER_OVERFLOW' ? 'GW_REQUEST_HEADERS_TOO_LARGE' : 'GW_REQUEST_INVALID'
    const message =
      code === 'GW_REQUEST_HEADERS_TOO_LARGE'
        ? `request headers exceed the limit of ${config.limits.maxHeaderBytes} bytes`
        : 'malformed HTTP request'
    socket.end(rawStatusResponse(toKubeStatus(new GatewayError(code, message))))
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
