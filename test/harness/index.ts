// The test harness: a real kube-apiserver with a fake kubelet, real clients, shared by test files.
import { after } from 'node:test'
import { readFileSync } from 'node:fs'
import { startCluster, CLUSTER_INFO_ENV, type ClusterInfo } from './cluster.ts'

export { KUBECTL_VERSIONS, type KubectlVersion } from './binaries.ts'
export {
  adminClient,
  createRunningPod,
  ensureNamespace,
  startCluster,
  CLUSTER_INFO_ENV,
  type ClusterInfo,
  type RunningCluster,
} from './cluster.ts'
export { helm, kubectl, runBinary, type CommandResult } from './kubectl.ts'
export { writeKubeconfig } from './kubeconfig.ts'
export { readAuditEvents, waitForAuditEvent, type AuditEvent } from './audit-log.ts'

let shared: Promise<ClusterInfo> | undefined

/**
 * The cluster for this test file: the one the test runner started (its info file is named by
 * an environment variable), or, when a file runs alone, one started here and stopped after.
 */
export function useCluster(): Promise<ClusterInfo> {
  shared ??= (async () => {
    const file = process.env[CLUSTER_INFO_ENV]
    if (file) return JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo
    const cluster = await startCluster()
    after(() => cluster.stop())
    return cluster.info
  })()
  return shared
}
