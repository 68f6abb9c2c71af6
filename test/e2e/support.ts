// Shared steps of the end-to-end tests: namespaces, pods, terminals, kubelet request log.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { constants, gunzipSync } from 'node:zlib'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  adminClient,
  createRunningPod,
  ensureNamespace,
  readAuditEvents,
  type ClusterInfo,
  type KubectlVersion,
} from '../harness/index.ts'
import type { PodSpecLite } from '../harness/cluster.ts'
import type { KubeletRequest } from '../harness/kubelet/server.ts'
import { readRecording, streamBytes } from '../../src/sessions/recording.ts'

export async function namespaceWithPods(
  info: ClusterInfo,
  namespace: string,
  pods: Record<string, PodSpecLite> = {},
): Promise<void> {
  const client = adminClient(info)
  try {
    await ensureNamespace(client, namespace)
    for (const [name, spec] of Object.entries(pods))
      await createRunningPod(client, namespace, name, spec)
  } finally {
    await client.close()
  }
}

/** Requests the fake kubelet received for one pod (exec, attach, portForward, containerLogs). */
/** The API server's minor version (ClusterInfo.serverVersion v1.37.2 -> 37). */
export function serverMinor(info: ClusterInfo): number {
  return Number(/^v1\.(\d+)\./.exec(info.serverVersion)?.[1] ?? 0)
}

/**
 * The Upgrade that reaches the kubelet when a client upgrades with `clientUpgrade`: since 1.30
 * (exec, attach; TranslateStreamCloseWebsocketRequests) and 1.31 (port-forward;
 * PortForwardWebsockets) the API server itself answers a WebSocket and speaks SPDY to the kubelet.
 */
export function kubeletUpgradeFor(
  info: ClusterInfo,
  kind: 'exec' | 'attach' | 'portforward',
  clientUpgrade: string,
): string {
  const minor = serverMinor(info)
  const translates = kind === 'portforward' ? minor >= 31 : minor >= 30
  return clientUpgrade.toLowerCase() === 'websocket' && translates ? 'spdy/3.1' : clientUpgrade
}

/**
 * The verbs the API server audited for a pod's exec, attach or portforward requests: `get` for a
 * WebSocket upgrade (GET), `create` for SPDY (POST). Where the API server translates WebSocket to
 * SPDY, this is what proves which dialect the client spoke.
 */
export function upgradeVerbsFor(
  info: ClusterInfo,
  namespace: string,
  pod: string,
  subresource: 'exec' | 'attach' | 'portforward',
): string[] {
  // an upgraded request is audited at ResponseStarted (the 101) and again when it ends
  const verbs = new Map<string, string>()
  for (const e of readAuditEvents(info.auditLogPath))
    if (
      e.objectRef?.namespace === namespace &&
      e.objectRef.name === pod &&
      e.objectRef.subresource === subresource
    )
      verbs.set(e.auditID, e.verb)
  return [...verbs.values()]
}

export function kubeletRequestsFor(
  info: ClusterInfo,
  namespace: string,
  pod: string,
): KubeletRequest[] {
  let text = ''
  try {
    text = readFileSync(info.kubeletRequestLog, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as KubeletRequest)
    .filter((r) => r.path.split('/')[2] === namespace && r.path.split('/')[3] === pod)
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * A program running in a real pseudo-terminal (util-linux `script`), driven like a person at a
 * keyboard: wait for text on the screen, then type.
 */
export class Terminal {
  output = ''
  readonly exited: Promise<number | null>
  readonly #child

  constructor(argv: string[], opts: { env: Record<string, string>; cols?: number; rows?: number }) {
    const command = `stty cols ${opts.cols ?? 120} rows ${opts.rows ?? 40}; exec ${argv.map(shellQuote).join(' ')}`
    this.#child = spawn('script', ['-q', '-e', '-E', 'never', '-c', command, '/dev/null'], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? '/root',
        // the run's temp folder (run-tests.ts), and the native-module hook of test:matrix
        ...Object.fromEntries(
          ['TMPDIR', 'NODE_OPTIONS', 'GATEHOUSE_NATIVE_MODULES'].flatMap((n) =>
            process.env[n] ? [[n, process.env[n]]] : [],
          ),
        ),
        ...opts.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.#child.stdout.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.#child.stderr.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => resolve(code)))
  }

  async waitFor(text: string | RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!(typeof text === 'string' ? this.output.includes(text) : text.test(this.output))) {
      if (Date.now() > deadline)
        throw new Error(`terminal never showed ${String(text)}; screen so far:\n${this.output}`)
      await sleep(25)
    }
  }

  type(keys: string): void {
    this.#child.stdin.write(keys)
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }
}

/** The exec dialects each kubectl speaks: 1.37 and 1.35 over WebSocket and forced onto SPDY, 1.32 WebSocket, 1.20 SPDY. */
export function execDialects(
  version: KubectlVersion,
): { name: string; env: Record<string, string> }[] {
  if (version === '1.20') return [{ name: 'spdy', env: {} }]
  const out = [{ name: 'ws', env: {} }]
  if (version === '1.35' || version === '1.37')
    out.push({ name: 'spdy', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } })
  return out
}

/** kubectl's own log line for a client-go race on the kubelet's ready frame (see kubectl-streams.ts). */
export function withoutClientGoNoise(stderr: string): string {
  return stderr.replace(
    /^E\d{4} [\d:.]+ +\d+ websocket\.go:\d+\] Unknown stream id \d+, discarding message\n/gm,
    '',
  )
}

/** Every file Gatehouse wrote under `dir`, gzip recordings decompressed (read up to a partial end). */
export function filesWritten(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = []
  const walk = (d: string): void => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name)
      if (f.isDirectory()) walk(p)
      else {
        const bytes = readFileSync(p)
        out.push({
          path: p,
          bytes: p.endsWith('.gz')
            ? gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH })
            : bytes,
        })
      }
    }
  }
  walk(dir)
  return out
}

/** Each recording under `dir` with its streams joined (stdout, stderr, stdin): what a search of the events would miss. */
export async function recordedStreams(
  dir: string,
): Promise<{ path: string; o: string; e: string; i: string }[]> {
  const out: { path: string; o: string; e: string; i: string }[] = []
  for (const { path } of filesWritten(dir)) {
    if (!path.endsWith('.cast.gz')) continue
    const r = await readRecording(Readable.from([readFileSync(path)]))
    const joined = (code: 'o' | 'e' | 'i') => streamBytes(r.events, code).toString('utf8')
    out.push({ path, o: joined('o'), e: joined('e'), i: joined('i') })
  }
  return out
}
