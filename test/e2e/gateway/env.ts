// The e2e world through Gatehouse: the harness cluster with Gatehouse's least-privilege account
// (deploy/rbac, applied as users would), a local OIDC issuer minting GitHub-Actions-shaped
// tokens, the API server's own service-account issuer, and Gatehouse in front of it all.
import { after, before } from 'node:test'
import { adminClient, ensureNamespace, useCluster, type ClusterInfo } from '../../harness/index.ts'
import {
  prepareGatehouseAccount,
  startGatehouse,
  type RunningGatehouse,
} from '../../harness/gatehouse.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { tempDir } from '../../harness/temp-dir.ts'

export const AUDIENCE = 'gatehouse'
/** The repository of the CI identity the e2e clients use. */
export const CI_REPOSITORY = 'octo-org/app'
/** The namespace of the service accounts whose apiserver-minted tokens are e2e identities. */
export const SA_NAMESPACE = 'gatehouse-e2e-identities'
export const GATEHOUSE_ACCOUNT = 'system:serviceaccount:gatehouse-system:gatehouse'

export interface GatewayEnv {
  cluster: ClusterInfo
  gatehouse: RunningGatehouse
  issuer: OidcIssuer
  dir: string
  /** Gatehouse's own (least-privilege) token for the cluster, to start more instances. */
  upstreamTokenFile: string
  /** A token minted by the apiserver for a ServiceAccount in SA_NAMESPACE, audience 'gatehouse'. */
  serviceAccountToken(name: string): Promise<string>
}

/** Cluster objects every gateway test file needs; idempotent, since test files run in parallel. */
async function prepareCluster(cluster: ClusterInfo, dir: string): Promise<string> {
  const tokenFile = await prepareGatehouseAccount(cluster, dir)
  const admin = adminClient(cluster)
  // What the e2e identities may do is the cluster's decision, as in production: cluster-admin
  // for the CI repository's owner group and the identities namespace group.
  await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'gatehouse-e2e:ci-admins' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'github:octo-org' },
      {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Group',
        name: `k8s-namespace:${SA_NAMESPACE}`,
      },
    ],
  })
  await ensureNamespace(admin, SA_NAMESPACE)
  return tokenFile
}

export function authenticationConfig(cluster: ClusterInfo, issuer: OidcIssuer): unknown {
  return {
    authenticators: [
      {
        oidc: {
          name: 'github',
          issuer: issuer.url,
          caFile: issuer.caFile,
          audiences: [AUDIENCE],
          preset: 'github-actions',
        },
      },
      {
        oidc: {
          name: 'k8s',
          issuer: cluster.server,
          caFile: cluster.caFile,
          audiences: [AUDIENCE],
          preset: 'kubernetes',
        },
      },
    ],
  }
}

/** Registers before/after hooks; the returned getter is valid inside tests. */
export function useGatewayEnv(
  opts: {
    overrides?: Record<string, unknown>
    /** Policy files for Gatehouse, given the running OIDC issuer (default: allow authenticated). */
    policies?: (issuer: OidcIssuer, dir: string) => string[]
  } = {},
): () => GatewayEnv {
  let env: GatewayEnv | undefined
  before(async () => {
    const cluster = await useCluster()
    const dir = tempDir('gatehouse-e2e-')
    const upstreamTokenFile = await prepareCluster(cluster, dir)
    const issuer = await startOidcIssuer({ dir, audience: AUDIENCE })
    const gatehouse = await startGatehouse(cluster, {
      authentication: authenticationConfig(cluster, issuer),
      upstreamTokenFile,
      ...(opts.overrides ? { overrides: opts.overrides } : {}),
      ...(opts.policies ? { policies: opts.policies(issuer, dir) } : {}),
    })
    const admin = adminClient(cluster)
    env = {
      cluster,
      gatehouse,
      issuer,
      dir,
      upstreamTokenFile,
      async serviceAccountToken(name) {
        await admin.ensure(`/api/v1/namespaces/${SA_NAMESPACE}/serviceaccounts`, {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name },
        })
        return await admin.serviceAccountToken(SA_NAMESPACE, name, {
          audiences: [AUDIENCE],
          expirationSeconds: 3600,
        })
      },
    }
  })
  after(async () => {
    await env?.gatehouse.stop()
    await env?.issuer.close()
  })
  return () => {
    if (!env) throw new Error('gateway e2e environment is not ready (before hook failed?)')
    return env
  }
}
