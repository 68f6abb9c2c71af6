// Kubeconfig files for real clients (kubectl, helm, client-node).
import { readFileSync, writeFileSync } from 'node:fs'
import { stringify } from 'yaml'

export interface KubeconfigOptions {
  server: string
  caFile: string
  token?: string
  clientCertFile?: string
  clientKeyFile?: string
  namespace?: string
  user?: string
}

export function kubeconfigYaml(opts: KubeconfigOptions): string {
  const user: Record<string, string> = {}
  if (opts.token) user['token'] = opts.token
  if (opts.clientCertFile)
    user['client-certificate-data'] = readFileSync(opts.clientCertFile).toString('base64')
  if (opts.clientKeyFile)
    user['client-key-data'] = readFileSync(opts.clientKeyFile).toString('base64')
  const userName = opts.user ?? 'user'
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'cluster',
        cluster: {
          server: opts.server,
          'certificate-authority-data': readFileSync(opts.caFile).toString('base64'),
        },
      },
    ],
    users: [{ name: userName, user }],
    contexts: [
      {
        name: 'ctx',
        context: {
          cluster: 'cluster',
          user: userName,
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
        },
      },
    ],
    'current-context': 'ctx',
  })
}

export function writeKubeconfig(path: string, opts: KubeconfigOptions): string {
  writeFileSync(path, kubeconfigYaml(opts), { mode: 0o600 })
  return path
}
