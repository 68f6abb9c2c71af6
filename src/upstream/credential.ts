// Gatehouse's own credential for a cluster, resolved from config. Callers never see it.
import { readFileSync, statSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import type { ClusterConfig } from '../config/index.ts'

export interface ResolvedUpstream {
  server: URL
  ca: string | undefined
  insecureSkipTLSVerify: boolean
  clientCert: { cert: string; key: string } | undefined
  /** Returns the bearer token to send, re-read when its file changes (projected tokens rotate). */
  token: (() => string) | undefined
}

const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** A token file re-read only when its mtime changes. */
/** Re-read when the file changes (rotated projected tokens), checked at most once a second. */
function tokenFromFile(path: string): () => string {
  let cached = ''
  let mtime = -1
  let checkedAt = 0
  return () => {
    const now = Date.now()
    if (cached && now - checkedAt < 1000) return cached
    checkedAt = now
    const m = statSync(path).mtimeMs
    if (m !== mtime) {
      cached = readFileSync(path, 'utf8').trim()
      mtime = m
      if (!cached) throw new Error(`token file ${path} is empty`)
    }
    return cached
  }
}

interface KubeconfigFile {
  'current-context'?: string
  contexts?: { name: string; context: { cluster: string; user: string } }[]
  clusters?: { name: string; cluster: Record<string, unknown> }[]
  users?: { name: string; user: Record<string, unknown> }[]
}

function fromKubeconfig(
  path: string,
  contextName: string | undefined,
): Omit<ResolvedUpstream, 'insecureSkipTLSVerify'> & { insecure: boolean } {
  const where = (field: string): string => `kubeconfig ${path}: ${field}`
  const kc = parseYaml(readFileSync(path, 'utf8')) as KubeconfigFile
  const name = contextName ?? kc['current-context']
  const ctx = kc.contexts?.find((c) => c.name === name)
  if (!ctx) throw new Error(where(`context '${name ?? ''}' not found`))
  const cluster = kc.clusters?.find((c) => c.name === ctx.context.cluster)?.cluster
  const user = kc.users?.find((u) => u.name === ctx.context.user)?.user ?? {}
  if (!cluster || typeof cluster['server'] !== 'string')
    throw new Error(where(`cluster '${ctx.context.cluster}' has no server`))
  const dataOrFile = (data: string, file: string): string | undefined => {
    if (typeof cluster[data] === 'string')
      return Buffer.from(cluster[data], 'base64').toString('utf8')
    if (typeof cluster[file] === 'string') return readFileSync(cluster[file], 'utf8')
    return undefined
  }
  const userDataOrFile = (data: string, file: string): string | undefined => {
    if (typeof user[data] === 'string') return Buffer.from(user[data], 'base64').toString('utf8')
    if (typeof user[file] === 'string') return readFileSync(user[file], 'utf8')
    return undefined
  }
  if (user['exec'] || user['auth-provider']) {
    throw new Error(
      where(
        `user '${ctx.context.user}' uses an exec or auth-provider plugin; give Gatehouse a token, token file or client certificate instead`,
      ),
    )
  }
  const cert = userDataOrFile('client-certificate-data', 'client-certificate')
  const key = userDataOrFile('client-key-data', 'client-key')
  const token =
    typeof user['token'] === 'string'
      ? (
          (t: string) => () =>
            t
        )(user['token'])
      : typeof user['tokenFile'] === 'string'
        ? tokenFromFile(user['tokenFile'])
        : undefined
  if (!token && !(cert && key))
    throw new Error(
      where(`user '${ctx.context.user}' has no token, tokenFile or client certificate`),
    )
  return {
    server: new URL(cluster['server']),
    ca: dataOrFile('certificate-authority-data', 'certificate-authority'),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    clientCert: cert && key ? { cert, key } : undefined,
    token,
  }
}

export function resolveUpstream(
  cluster: ClusterConfig,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedUpstream {
  const c = cluster.credential
  const configuredCa = cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : undefined
  const need = (what: string): never => {
    throw new Error(`cluster '${cluster.name}': ${what}`)
  }
  if (c.kubeconfig) {
    const r = fromKubeconfig(c.kubeconfig.path, c.kubeconfig.context)
    return {
      server: cluster.server ? new URL(cluster.server) : r.server,
      ca: configuredCa ?? r.ca,
      insecureSkipTLSVerify: cluster.insecureSkipTLSVerify || r.insecure,
      clientCert: r.clientCert,
      token: r.token,
    }
  }
  if (c.inCluster) {
    const host = env['KUBERNETES_SERVICE_HOST']
    const port = env['KUBERNETES_SERVICE_PORT'] ?? '443'
    const server =
      cluster.server ??
      (host
        ? `https://${host.includes(':') ? `[${host}]` : host}:${port}`
        : need('inCluster needs KUBERNETES_SERVICE_HOST or server'))
    return {
      server: new URL(server),
      ca: configuredCa ?? readFileSync(`${IN_CLUSTER_DIR}/ca.crt`, 'utf8'),
      insecureSkipTLSVerify: cluster.insecureSkipTLSVerify,
      clientCert: undefined,
      token: tokenFromFile(`${IN_CLUSTER_DIR}/token`),
    }
  }
  const server = new URL(cluster.server ?? need('server is required with this credential'))
  const base = { server, ca: configuredCa, insecureSkipTLSVerify: cluster.insecureSkipTLSVerify }
  if (c.tokenFile) return { ...base, clientCert: undefined, token: tokenFromFile(c.tokenFile) }
  if (c.tokenEnv) {
    const name = c.tokenEnv
    const value = env[name] ?? need(`environment variable ${name} (credential.tokenEnv) is not set`)
    return { ...base, clientCert: undefined, token: () => value }
  }
  const clientCertificate = c.clientCertificate ?? need('credential names no method')
  return {
    ...base,
    clientCert: {
      cert: readFileSync(clientCertificate.certFile, 'utf8'),
      key: readFileSync(clientCertificate.keyFile, 'utf8'),
    },
    token: undefined,
  }
}
