// Which requests may switch protocols. Kubernetes upgrades a connection only for the connect
// subresources that carry a session: pods/exec, pods/attach and pods/portforward, over WebSocket
// (RFC 6455: a GET) or SPDY/3.1 (client-go sends POST; the API server takes GET too). Every other
// request that carries `Connection: Upgrade` (a ConfigMap GET, a watch, `h2c`, a made-up
// protocol) is an ordinary request the API server may answer without switching, after which the
// connection would carry whatever the client writes next: Gatehouse refuses it instead (issue 18).
//
// The proxy subresources (pods/proxy, services/proxy, nodes/proxy) can upgrade too, to whatever
// the pod speaks; Gatehouse cannot read that protocol and so cannot record it, and refuses.

/** The protocols a session tap can read, as the Upgrade header names them (lower-case). */
export type UpgradeProtocol = 'websocket' | 'spdy/3.1'

export interface UpgradeRequest {
  method: string
  /** The request's attributes (kube/request-info.ts). */
  info: {
    isResourceRequest: boolean
    apiGroup: string
    resource: string
    subresource: string
    name: string
  }
  /** The raw headers, name/value pairs (repeats kept). */
  rawHeaders: readonly string[]
}

const SESSION_SUBRESOURCES = new Set(['exec', 'attach', 'portforward'])

export type UpgradeVerdict = { ok: true; protocol: UpgradeProtocol } | { ok: false; reason: string }

/** Whether Gatehouse honours this upgrade, and with which protocol; else why not. */
export function checkUpgrade(r: UpgradeRequest): UpgradeVerdict {
  const values: string[] = []
  let body = false
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i]!.toLowerCase()
    const value = r.rawHeaders[i + 1]!
    if (name === 'upgrade') values.push(...value.split(',').map((v) => v.trim()))
    else if (name === 'transfer-encoding') body = true
    else if (name === 'content-length' && value.trim() !== '0') body = true
  }
  const i = r.info
  if (
    !i.isResourceRequest ||
    i.apiGroup !== '' ||
    i.resource !== 'pods' ||
    !SESSION_SUBRESOURCES.has(i.subresource) ||
    !i.name
  )
    return { ok: false, reason: 'this is not an exec, attach or port-forward request' }
  const offered = values.filter(Boolean)
  if (offered.length !== 1)
    return { ok: false, reason: `expected one protocol in Upgrade, got ${offered.length}` }
  const protocol = offered[0]!.toLowerCase()
  if (protocol !== 'websocket' && protocol !== 'spdy/3.1')
    return {
      ok: false,
      reason: `Upgrade: ${offered[0]!.slice(0, 40)} is not a protocol Gatehouse speaks`,
    }
  if (protocol === 'websocket' && r.method !== 'GET')
    return { ok: false, reason: 'a WebSocket upgrade is a GET (RFC 6455 section 4.1)' }
  if (protocol === 'spdy/3.1' && r.method !== 'GET' && r.method !== 'POST')
    return { ok: false, reason: 'a SPDY upgrade is a POST or a GET' }
  // the bytes after the head are the session's; a body would be read as frames
  if (body) return { ok: false, reason: 'an upgrade request carries no body' }
  return { ok: true, protocol }
}
