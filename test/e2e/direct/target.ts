// Clients pointed straight at the harness API server with its admin credential.
import { before } from 'node:test'
import { useCluster, type ClusterInfo } from '../../harness/index.ts'
import type { Target } from '../scenarios/target.ts'

export function directTarget(): () => Target {
  let cluster: ClusterInfo
  before(async () => {
    cluster = await useCluster()
  })
  return () => ({
    name: 'direct',
    cluster,
    kubeconfig: () => Promise.resolve(cluster.adminKubeconfig),
  })
}
