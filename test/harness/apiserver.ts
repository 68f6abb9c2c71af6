// etcd + a real kube-apiserver on loopback, configured as the tests and the sandbox need it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { apiserverVersionOf, etcdPath, kubeApiserverPath } from './binaries.ts'
import { KubeClient } from './kube-client.ts'
import { createCa, createRsaKeyPair, issueCert, type TestCa } from './pki.ts'
import { freePort } from './ports.ts'
import { startProcess, type ManagedProcess } from './processes.ts'

export interface ApiServer {
  server: string
  port: number
  ca: TestCa
  caFile: string
  adminToken: string
  auditLogPath: string
  /** Signing key of service-account tokens (issuer = server URL). */
  serviceAccountKeyFile: string
  /** What the API server binary reports, e.g. v1.37.2. */
  version: string
  processes: ManagedProcess[]
}

// Metadata level for everything: the audit log is the oracle for "what did the API server see"
// (user, impersonated user, verb, objectRef, requestURI, auditID) without logging bodies.
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
`

async function waitFor(
  what: string,
  proc: ManagedProcess[],
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    for (const p of proc) {
      if (p.child.exitCode !== null) {
        const tail = readFileSync(p.logFile, 'utf8').split('\n').slice(-30).join('\n')
        throw new Error(
          `${p.name} exited with code ${p.child.exitCode} while waiting for ${what}:\n${tail}`,
        )
      }
    }
    if (await probe().catch(() => false)) return
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(200)
  }
}

async function startEtcd(dir: string): Promise<{ proc: ManagedProcess; url: string }> {
  const clientPort = await freePort()
  const peerPort = await freePort()
  const url = `http://127.0.0.1:${clientPort}`
  const proc = startProcess(
    'etcd',
    etcdPath(),
    [
      '--name=gatehouse-test',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=gatehouse-test=http://127.0.0.1:${peerPort}`,
      '--log-level=warn',
      '--logger=zap',
      '--quota-backend-bytes=4294967296',
    ],
    {
      logFile: join(dir, 'etcd.log'),
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch },
    },
  )
  await waitFor('etcd', [proc], 30_000, async () => (await fetch(`${url}/health`)).ok)
  return { proc, url }
}

/** Flags that differ between the API server versions the harness runs. */
function versionFlags(minor: number): string[] {
  // --insecure-port was removed in 1.24 (the insecure port itself in 1.20)
  if (minor < 24) return ['--insecure-port=0']
  // The endpoint reconciler (the `kubernetes` Service's endpoints) refuses a loopback
  // --advertise-address; nothing in the harness reaches the API server through that Service.
  return [
    '--endpoint-reconciler-type=none',
    // CBOR (KEP-4222) is alpha and off by default; on, so the tests prove Gatehouse never
    // relays it to a masked caller (test/e2e/gateway/current-cluster.test.ts)
    ...(minor >= 32 ? ['--feature-gates=CBORServingAndStorage=true'] : []),
  ]
}

/** Starts etcd and the API server; `version` picks that build from the cache (else the default). */
export async function startApiServer(dir: string, version?: string): Promise<ApiServer> {
  mkdirSync(dir, { recursive: true })
  const binary = kubeApiserverPath(version)
  const { gitVersion, minor } = apiserverVersionOf(binary)
  const pkiDir = join(dir, 'pki')
  mkdirSync(pkiDir, { recursive: true })
  const ca = createCa(pkiDir, 'cluster-ca')
  const serving = issueCert(ca, 'apiserver', {
    sans: [
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default.svc',
      'IP:127.0.0.1',
      'IP:10.96.0.1',
    ],
  })
  const sa = createRsaKeyPair(pkiDir, 'service-account')
  const adminToken = `admin-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`
  const tokenFile = join(pkiDir, 'tokens.csv')
  writeFileSync(tokenFile, `${adminToken},harness-admin,harness-admin-uid,"system:masters"\n`, {
    mode: 0o600,
  })
  const auditPolicy = join(dir, 'audit-policy.yaml')
  writeFileSync(auditPolicy, AUDIT_POLICY)
  const auditLogPath = join(dir, 'audit.log')

  const etcd = await startEtcd(dir)
  const port = await freePort()
  const server = `https://127.0.0.1:${port}`
  const apiserver = startProcess(
    'kube-apiserver',
    binary,
    [
      `--etcd-servers=${etcd.url}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      ...versionFlags(minor),
      `--cert-dir=${join(dir, 'cert-dir')}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${sa.publicFile}`,
      `--service-account-signing-key-file=${sa.privateFile}`,
      `--api-audiences=${server}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=RBAC',
      `--token-auth-file=${tokenFile}`,
      `--audit-log-path=${auditLogPath}`,
      `--audit-policy-file=${auditPolicy}`,
      '--audit-log-format=json',
      '--audit-log-mode=blocking',
      '--kubelet-preferred-address-types=InternalIP',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
    ],
    { logFile: join(dir, 'kube-apiserver.log') },
  )
  const ca_pem = readFileSync(ca.certFile)
  const client = new KubeClient({ server, ca: ca_pem, token: adminToken })
  try {
    await waitFor('kube-apiserver /readyz', [etcd.proc, apiserver], 120_000, async () => {
      const res = await client.raw('GET', '/readyz')
      return res.statusCode === 200
    })
    // The bootstrap controller creates the default namespace shortly after readyz.
    await waitFor('namespace default', [apiserver], 30_000, async () => {
      const res = await client.raw('GET', '/api/v1/namespaces/default')
      return res.statusCode === 200
    })
  } finally {
    await client.close()
  }
  return {
    server,
    port,
    ca,
    caFile: ca.certFile,
    adminToken,
    auditLogPath,
    serviceAccountKeyFile: sa.privateFile,
    version: gitVersion,
    processes: [apiserver, etcd.proc],
  }
}
