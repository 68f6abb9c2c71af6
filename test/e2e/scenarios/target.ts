// Where a scenario's clients point: straight at the API server, or (later) through Gatehouse.
// Every scenario runs against both, so "works through Gatehouse" means "same as direct".
import type { ClusterInfo, KubectlVersion } from '../../harness/index.ts'

export interface Target {
  /** 'direct' or 'gatehouse'; part of namespace names so runs never collide. */
  readonly name: string
  readonly cluster: ClusterInfo
  /** A kubeconfig for the given client (kubectl version, helm or client-node). */
  kubeconfig(client: KubectlVersion | 'helm' | 'client-node'): Promise<string>
}

// Namespaces cannot be deleted without a controller-manager, so each test run gets fresh ones.
const RUN = Math.random().toString(36).slice(2, 6)

/** A DNS-label namespace name unique to the run, target, scenario and client. */
export function nsName(target: Target, scenario: string, client: string): string {
  return (
    `${target.name}-${scenario}-${client.replace(/\./g, '')}`.toLowerCase().slice(0, 57) + `-${RUN}`
  )
}
