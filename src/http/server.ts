// The TLS listener: HTTP/1.1 (upgrades need it), optional client certificates for mTLS, and
// Status answers even for requests Node's parser rejects (oversized or malformed headers).
import { createServer, type Server } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import type { GatewayConfig } from '../config/index.ts'
import { GatewayError, rawStatusResponse, toKubeStatus } from '../errors/index.ts'
import type { Gateway } from '../gateway.ts'
import { ensureLocalServingMaterial } from './local-ca.ts'

export interface Listener {
  readonly server: Server
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
  const server = createServer({
    cert: material.certPem,
    key: material.keyPem,
    ...(config.listen.clientCAFile
      ? {
          ca: readFileSync(config.listen.clientCAFile, 'utf8'),
          requestCert: true,
          rejectUnauthorized: false,
        }
      : {}),
    ALPNProtocols: ['http/1.1'],
    maxHeaderSize: config.limits.maxHeaderBytes,
    // Watches and log follows are long-lived; only the request head must arrive promptly.
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 65_000,
  })
  server.on('request', (req, res) => gateway.handleRequest(req, res))
  server.on('upgrade', (req, socket: Socket, head: Buffer) =>
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
      server.closeIdleConnections()
      await gateway.shutdown(config.limits.shutdownGraceMs)
      server.closeAllConnections()
      await closed
    },
  }
}
