// authenticate: the caller's credentials → an Identity, or a generic 401. Details of why a
// token was refused go to the log, never to the caller.
import type { TLSSocket } from 'node:tls'
import type { Authenticator, Credentials } from '../../authn/index.ts'
import { GatewayError } from '../../errors/index.ts'
import { WS_BEARER_PREFIX } from '../../upstream/headers.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export function extractCredentials(ctx: RequestContext): Credentials {
  const creds: Credentials = {}
  const auth = ctx.req.headers.authorization
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (m) creds.bearerToken = m[1]!
  } else {
    // Browsers cannot set headers on WebSocket: the token rides in the subprotocol list.
    const offered = (ctx.req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
    const carrier = offered.find((p) => p.startsWith(WS_BEARER_PREFIX))
    if (carrier) {
      const token = Buffer.from(carrier.slice(WS_BEARER_PREFIX.length), 'base64url').toString(
        'utf8',
      )
      if (token) creds.bearerToken = token
    }
  }
  const socket = ctx.req.socket as TLSSocket
  if (socket.authorized && typeof socket.getPeerCertificate === 'function') {
    const cert = socket.getPeerCertificate(false)
    if (cert && Object.keys(cert).length > 0) creds.peerCertificate = cert
  }
  return creds
}

export function createAuthenticateStage(authenticator: Authenticator): Stage {
  return {
    name: 'authenticate',
    async run(ctx: RequestContext) {
      const result = await authenticator.authenticate(extractCredentials(ctx))
      if (result.outcome === 'authenticated') {
        ctx.identity = result.identity
        return
      }
      const detail =
        result.outcome === 'rejected'
          ? `${result.code}: ${result.detail}`
          : 'no authenticator accepted the credentials'
      if (result.outcome === 'rejected' && result.code === 'GW_AUTHN_ISSUER_UNAVAILABLE') {
        throw new GatewayError(
          'GW_AUTHN_UNAVAILABLE',
          'Gatehouse cannot verify credentials right now; try again shortly',
          { detail },
        )
      }
      const code =
        result.outcome === 'rejected' && result.code === 'GW_AUTHN_MISSING_CREDENTIALS'
          ? 'GW_AUTHN_MISSING_CREDENTIALS'
          : 'GW_AUTHN_INVALID_TOKEN'
      throw new GatewayError(code, 'Unauthorized', { detail })
    },
  }
}
