// `gatehouse kubeconfig`: a kubeconfig that points a client at one cluster behind Gatehouse,
// trusting Gatehouse's CA, with the token supplied by the `gatehouse credential` exec plugin.
import { stringify } from 'yaml'

export interface KubeconfigOptions {
  gatewayUrl: string
  cluster: string
  caCertPem: string
  /** How kubectl obtains the token; omitted → a static token must be added by the user. */
  exec?: { command: string; args: string[] }
  /** A literal token (tests, sandbox); prefer exec for CI. */
  token?: string
  namespace?: string
}

export function buildKubeconfig(opts: KubeconfigOptions): string {
  const name = `gatehouse-${opts.cluster}`
  const user: Record<string, unknown> = {}
  if (opts.token) user['token'] = opts.token
  if (opts.exec) {
    user['exec'] = {
      // v1beta1: understood by every kubectl from 1.11 to today (v1 needs 1.22+).
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: opts.exec.command,
      args: opts.exec.args,
      provideClusterInfo: false,
    }
  }
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server: `${opts.gatewayUrl.replace(/\/$/, '')}/clusters/${opts.cluster}`,
          'certificate-authority-data': Buffer.from(opts.caCertPem).toString('base64'),
        },
      },
    ],
    users: [{ name, user }],
    contexts: [
      {
        name,
        context: {
          cluster: name,
          user: name,
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
        },
      },
    ],
    'current-context': name,
  })
}
