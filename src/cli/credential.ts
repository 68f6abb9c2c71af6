// `gatehouse credential`: a kubectl exec credential plugin that hands kubectl the CI job's own
// OIDC token (from a file or an environment variable), so pipelines only swap their kubeconfig.
import { readFileSync } from 'node:fs'

export interface CredentialOptions {
  tokenFile?: string
  tokenEnv?: string
}

/** kubectl tells the plugin which API version it expects in KUBERNETES_EXEC_INFO (1.20 only knows v1beta1). */
function requestedApiVersion(env: NodeJS.ProcessEnv): string {
  try {
    const info = JSON.parse(env['KUBERNETES_EXEC_INFO'] ?? '{}') as { apiVersion?: string }
    if (info.apiVersion?.startsWith('client.authentication.k8s.io/')) return info.apiVersion
  } catch {
    /* fall through to the version every kubectl since 1.11 accepts */
  }
  return 'client.authentication.k8s.io/v1beta1'
}

/** The `exp` claim of a JWT, read without verification (Gatehouse verifies; kubectl only caches). */
export function tokenExpiry(token: string): Date | undefined {
  const payload = token.split('.')[1]
  if (!payload) return undefined
  try {
    const exp = (
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }
    ).exp
    return typeof exp === 'number' ? new Date(exp * 1000) : undefined
  } catch {
    return undefined
  }
}

export function execCredential(
  opts: CredentialOptions,
  env: NodeJS.ProcessEnv = process.env,
): string {
  let token: string
  if (opts.tokenFile) {
    try {
      token = readFileSync(opts.tokenFile, 'utf8').trim()
    } catch (e) {
      throw new Error(
        `gatehouse credential: cannot read --token-file ${opts.tokenFile}: ${(e as Error).message}`,
      )
    }
  } else if (opts.tokenEnv) {
    token = (env[opts.tokenEnv] ?? '').trim()
    if (!token)
      throw new Error(
        `gatehouse credential: environment variable ${opts.tokenEnv} (--token-env) is empty or not set`,
      )
  } else {
    throw new Error('gatehouse credential: give --token-file PATH or --token-env NAME')
  }
  if (!token) throw new Error(`gatehouse credential: token file ${opts.tokenFile} is empty`)
  const expiry = tokenExpiry(token)
  return JSON.stringify({
    apiVersion: requestedApiVersion(env),
    kind: 'ExecCredential',
    status: {
      token,
      ...(expiry ? { expirationTimestamp: expiry.toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
    },
  })
}
