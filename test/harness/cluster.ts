// The whole test cluster: etcd, kube-apiserver, the fake kubelet registered as a Node, and the
// objects a cluster without controller-manager lacks (default ServiceAccounts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startApiServer } from './apiserver.ts'
import { KubeClient } from './kube-client.ts'
import { writeKubeconfig } from './kubeconfig.ts'
import { startFakeKubelet, type FakeKubelet } from './kubelet/server.ts'
import { issueCert } from './pki.ts'
import type { ManagedProcess } from './processes.ts'

export const NODE_NAME = 'fake-node'

/**
 * The fake node's InternalIP, where the fake kubelet listens. The API server (1.37; 1.20 did not)
 * refuses `nodes/{name}/proxy` to an address that is not global unicast ("address not allowed"),
 * so the node gets the machine's own non-loopback IPv4 address (GATEHOUSE_NODE_IP overrides),
 * 127.0.0.1 only where there is none.
 */
export function nodeAddress(): string {
  const wanted = process.env['GATEHOUSE_NODE_IP']
  if (wanted) return wanted
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  return '127.0.0.1'
}

/** What a test process needs to reach the cluster; serialisable, shared through a file. */
export interface ClusterInfo {
  runDir: string
  server: string
  caFile: string
  caKeyFile: string
  adminToken: string
  adminKubeconfig: string
  auditLogPath: string
  serviceAccountKeyFile: string
  kubeletPort: number
  /** JSON lines of every request the fake kubelet saw (method, path, upgrade, offered protocols). */
  kubeletRequestLog: string
  nodeName: string
  /** The API server's version (kube-apiserver --version), e.g. v1.37.2. */
  serverVersion: string
}

export interface RunningCluster {
  info: ClusterInfo
  kubelet: FakeKubelet
  stop(): Promise<void>
}

export const CLUSTER_INFO_ENV = 'GATEHOUSE_HARNESS_CLUSTER'

export function adminClient(info: ClusterInfo): KubeClient {
  return new KubeClient({
    server: info.server,
    ca: readFileSync(info.caFile),
    token: info.adminToken,
  })
}

async function registerNode(
  client: KubeClient,
  kubeletPort: number,
  version: string,
  address: string,
): Promise<void> {
  await client.ensure('/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } },
  })
  const now = new Date().toISOString()
  await client.json(
    'PATCH',
    `/api/v1/nodes/${NODE_NAME}/status`,
    {
      status: {
        addresses: [{ type: 'InternalIP', address }],
        daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'fake kubelet',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        capacity: { cpu: '8', memory: '32Gi', pods: '110' },
        allocatable: { cpu: '8', memory: '32Gi', pods: '110' },
        nodeInfo: {
          kubeletVersion: version,
          kubeProxyVersion: version,
          containerRuntimeVersion: 'fake://1.0',
          operatingSystem: 'linux',
          architecture: 'amd64',
          osImage: 'fake',
          kernelVersion: 'fake',
          machineID: 'fake',
          systemUUID: 'fake',
          bootID: 'fake',
        },
      },
    },
    'application/merge-patch+json',
  )
}

/** A namespace with its default ServiceAccount (no controller-manager runs to create it). */
export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  await client.ensure('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  })
  await client.ensure(`/api/v1/namespaces/${name}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: name },
  })
}

export interface PodSpecLite {
  containers?: { name: string; image?: string; env?: { name: string; value: string }[] }[]
  annotations?: Record<string, string>
  labels?: Record<string, string>
}

/** A Pod bound to the fake node and marked Running, as a kubelet would report it. */
export async function createRunningPod(
  client: KubeClient,
  namespace: string,
  name: string,
  spec: PodSpecLite = {},
): Promise<void> {
  const containers = (spec.containers ?? [{ name: 'main' }]).map((c) => ({
    name: c.name,
    image: c.image ?? 'example.invalid/fake:1',
    ...(c.env ? { env: c.env } : {}),
  }))
  await client.ensure(`/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, annotations: spec.annotations ?? {}, labels: spec.labels ?? {} },
    spec: { nodeName: NODE_NAME, automountServiceAccountToken: false, containers },
  })
  const now = new Date().toISOString()
  await client.json(
    'PATCH',
    `/api/v1/namespaces/${namespace}/pods/${name}/status`,
    {
      status: {
        phase: 'Running',
        hostIP: '127.0.0.1',
        podIP: '10.244.0.10',
        startTime: now,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        containerStatuses: containers.map((c) => ({
          name: c.name,
          image: c.image,
          imageID: `${c.image}@sha256:${'0'.repeat(64)}`,
          containerID: `fake://${namespace}-${name}-${c.name}`,
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: now } },
        })),
      },
    },
    'application/merge-patch+json',
  )
}

/** The cluster; `version` starts that kube-apiserver build from the cache instead of the default. */
export async function startCluster(
  opts: { dir?: string; version?: string } = {},
): Promise<RunningCluster> {
  const runDir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-harness-'))
  const api = await startApiServer(runDir, opts.version)
  const client = adminClient({
    server: api.server,
    caFile: api.caFile,
    adminToken: api.adminToken,
  } as ClusterInfo)
  const address = nodeAddress()
  const kubeletCert = issueCert(api.ca, 'kubelet', {
    sans: [
      'DNS:localhost',
      `DNS:${NODE_NAME}`,
      'IP:127.0.0.1',
      ...(address === '127.0.0.1' ? [] : [`IP:${address}`]),
    ],
  })
  const kubeletLog = join(runDir, 'kubelet-requests.jsonl')
  const kubelet = await startFakeKubelet({
    cert: kubeletCert,
    client,
    requestLog: kubeletLog,
    address,
  })
  const processes: ManagedProcess[] = api.processes
  const stop = async (): Promise<void> => {
    await kubelet.close()
    await client.close()
    for (const p of processes) await p.stop()
  }
  try {
    await registerNode(client, kubelet.port, api.version, address)
    await ensureNamespace(client, 'default')
  } catch (e) {
    await stop()
    throw e
  }
  const info: ClusterInfo = {
    runDir,
    server: api.server,
    caFile: api.caFile,
    caKeyFile: api.ca.keyFile,
    adminToken: api.adminToken,
    adminKubeconfig: writeKubeconfig(join(runDir, 'admin.kubeconfig'), {
      server: api.server,
      caFile: api.caFile,
      token: api.adminToken,
      user: 'harness-admin',
    }),
    auditLogPath: api.auditLogPath,
    serviceAccountKeyFile: api.serviceAccountKeyFile,
    kubeletPort: kubelet.port,
    kubeletRequestLog: kubeletLog,
    nodeName: NODE_NAME,
    serverVersion: api.version,
  }
  writeFileSync(join(runDir, 'cluster.json'), JSON.stringify(info, null, 2))
  return {
    info,
    kubelet,
    async stop() {
      await stop()
      if (!opts.dir && process.env['GATEHOUSE_KEEP_HARNESS'] !== '1')
        rmSync(runDir, { recursive: true, force: true })
    },
  }
}
