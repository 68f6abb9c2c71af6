// Clients pointed straight at the harness API server, as a cluster-admin ServiceAccount of their
// own: the end-of-run join check (test/harness/join-invariant.ts) tells their requests from
// everything else by this account, not by a blanket exemption.
import { join } from 'node:path'
import { before } from 'node:test'
import {
  adminClient,
  ensureNamespace,
  useCluster,
  writeKubeconfig,
  type ClusterInfo,
} from '../../harness/index.ts'
import { DIRECT_CLIENT_NAMESPACE, DIRECT_CLIENT_USER } from '../../harness/join-invariant.ts'
import type { Target } from '../scenarios/target.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const ACCOUNT = DIRECT_CLIENT_USER.split(':').pop()!

/** A kubeconfig for the direct client's account (created on first use; idempotent). */
async function directKubeconfig(cluster: ClusterInfo): Promise<string> {
  const admin = adminClient(cluster)
  try {
    await ensureNamespace(admin, DIRECT_CLIENT_NAMESPACE)
    await admin.ensure(`/api/v1/namespaces/${DIRECT_CLIENT_NAMESPACE}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: ACCOUNT },
    })
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'gatehouse-e2e:direct-client' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'cluster-admin',
      },
      subjects: [{ kind: 'ServiceAccount', name: ACCOUNT, namespace: DIRECT_CLIENT_NAMESPACE }],
    })
    const token = await admin.serviceAccountToken(DIRECT_CLIENT_NAMESPACE, ACCOUNT, {
      expirationSeconds: 86400,
    })
    return writeKubeconfig(join(tempDir('gatehouse-direct-'), 'kubeconfig'), {
      server: cluster.server,
      caFile: cluster.caFile,
      token,
      user: ACCOUNT,
    })
  } finally {
    await admin.close()
  }
}

export function directTarget(): () => Target {
  let cluster: ClusterInfo
  let kubeconfig: string
  before(async () => {
    cluster = await useCluster()
    kubeconfig = await directKubeconfig(cluster)
  })
  return () => ({
    name: 'direct',
    cluster,
    kubeconfig: () => Promise.resolve(kubeconfig),
  })
}
