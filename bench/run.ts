// `npm run bench`: direct, nginx proxy_pass and Gatehouse (authentication on: every request
// carries an OIDC token Gatehouse verifies) in one run, on the same machine and upstream.
// Prints throughput ratios Gatehouse/nginx and p50/p99 latency at a fixed rate, and a CPU
// profile of Gatehouse under load. Then sessions (bench/sessions.ts): exec over WebSocket
// direct, through nginx and through Gatehouse with and without session recording. Not part of
// the test command: speed is measured, not asserted in tests. Gatehouse runs as its own process
// (`gatehouse serve`), like in production.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import {
  adminClient,
  createRunningPod,
  ensureNamespace,
  startCluster,
} from '../test/harness/index.ts'
import { prepareGatehouseAccount } from '../test/harness/gatehouse.ts'
import { startOidcIssuer } from '../test/harness/oidc-issuer.ts'
import { createCa, issueCert } from '../test/harness/pki.ts'
import { freePort } from '../test/harness/ports.ts'
import { repoRoot } from '../test/harness/binaries.ts'
import { fixedRate, latencyUnderWatches, watchFanOut } from './load.ts'
import { startNginx } from './nginx.ts'
import { summarizeProfile } from './profile.ts'
import { runWrk, type WrkResult } from './wrk.ts'
import { runH2load, type H2Result } from './h2load.ts'
import {
  measureAuditThroughput,
  measureDecisionCost,
  measureJournalCost,
  writeBenchPolicies,
} from './policy-audit.ts'
import { runSessionBench } from './sessions.ts'
import { maskingReport, measureMasking, writeMaskingPolicies } from './masking.ts'
import { detectorLinearity } from './detectors.ts'
import { CONDITION_NAMESPACE, measureBodyDecode, measurePatches } from './writes.ts'
import { loginFloodReport, measureLoginFlood } from './login-flood.ts'

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10)
const AUDIENCE = 'gatehouse'
const PG_URL = process.env['GATEHOUSE_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Subject {
  name: 'direct' | 'nginx' | 'gatehouse'
  base: string
  token: string | undefined
}

async function waitReady(url: string, ca: string): Promise<void> {
  const { Agent, request } = await import('undici')
  const agent = new Agent({ connect: { ca } })
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      const res = await request(`${url}/gatehouse/readyz`, { dispatcher: agent })
      await res.body.text()
      if (res.statusCode === 200) break
    } catch {
      /* not yet listening */
    }
    if (Date.now() > deadline) throw new Error('gatehouse did not become ready')
    await new Promise((r) => setTimeout(r, 100))
  }
  await agent.close()
}

interface BenchGatehouse {
  proc: ChildProcess
  pid: number
  url: string
  ca: string
  dataDir: string
}

/**
 * Writes a Gatehouse config (the bench's authenticator, cluster and 1,001 policy rules; every
 * request audited into SQLite) and runs `gatehouse serve` with it as its own process.
 */
async function startBenchGatehouse(opts: {
  dataDir: string
  configFile: string
  issuerUrl: string
  issuerCaFile: string
  server: string
  serverCaFile: string
  upstreamTokenFile: string
  policyDir: string
  /** Write a CPU profile into this directory. */
  profileDir?: string
  /** The `sessions` section; absent: the defaults (every session recorded). */
  sessions?: Record<string, unknown>
  /** The `audit` section; absent: the defaults (SQLite, journal on). */
  audit?: Record<string, unknown>
}): Promise<BenchGatehouse> {
  const port = await freePort()
  writeFileSync(
    opts.configFile,
    stringify({
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'GatewayConfig',
      dataDir: opts.dataDir,
      logLevel: 'warn',
      listen: { address: '127.0.0.1', port },
      authentication: {
        authenticators: [
          {
            oidc: {
              name: 'github',
              issuer: opts.issuerUrl,
              caFile: opts.issuerCaFile,
              audiences: [AUDIENCE],
              preset: 'github-actions',
            },
          },
        ],
      },
      clusters: [
        {
          name: 'bench',
          default: true,
          server: opts.server,
          caFile: opts.serverCaFile,
          credential: { tokenFile: opts.upstreamTokenFile },
        },
      ],
      // The data path runs with 1,001 policy rules loaded and every request audited (SQLite,
      // the default store), as a production gateway would.
      policies: { paths: [opts.policyDir] },
      // the load scenarios open 2,000 watches with one identity
      limits: { concurrency: { perIdentityStreams: 5000, perIdentityRequests: 1000 } },
      ...(opts.sessions ? { sessions: opts.sessions } : {}),
      ...(opts.audit ? { audit: opts.audit } : {}),
    }),
  )
  const proc = spawn(
    process.execPath,
    [
      ...(opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : []),
      join(repoRoot, 'build', 'src', 'cli', 'main.js'),
      'serve',
      '--config',
      opts.configFile,
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  const url = `https://127.0.0.1:${port}`
  await new Promise((r) => setTimeout(r, 300))
  for (let i = 0; i < 100; i++) {
    try {
      readFileSync(join(opts.dataDir, 'pki', 'ca.crt'))
      break
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const ca = readFileSync(join(opts.dataDir, 'pki', 'ca.crt'), 'utf8')
  await waitReady(url, ca)
  return { proc, pid: proc.pid!, url, ca, dataDir: opts.dataDir }
}

async function stopGatehouse(g: BenchGatehouse | undefined): Promise<void> {
  if (!g || g.proc.exitCode !== null || g.proc.signalCode !== null) return
  const exited = new Promise((r) => g.proc.once('exit', r))
  g.proc.kill('SIGINT')
  const timer = setTimeout(() => g.proc.kill('SIGKILL'), 20_000)
  await exited
  clearTimeout(timer)
  if (g.proc.exitCode !== 0)
    console.error(
      `[bench] gatehouse (${g.dataDir}) ended with ${g.proc.exitCode ?? g.proc.signalCode} on SIGINT`,
    )
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a'
}

async function main(): Promise<void> {
  const dir = join(repoRoot, '.bench', String(Date.now()))
  mkdirSync(dir, { recursive: true })
  console.log(`[bench] run directory ${dir}; ${SECONDS}s per measurement`)
  const cluster = await startCluster({ dir: join(dir, 'cluster') })
  let gatehouse: ChildProcess | undefined
  const sessionGatehouses: BenchGatehouse[] = []
  let stopNginx: (() => void) | undefined
  const issuer = await startOidcIssuer({ dir, audience: AUDIENCE })
  try {
    const info = cluster.info
    const admin = adminClient(info)
    const upstreamTokenFile = await prepareGatehouseAccount(info, dir)
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'bench:ci-admins' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'cluster-admin',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'github:octo-org' }],
    })

    // Data: one small ConfigMap, and ~5 MB of ConfigMaps in another namespace.
    await ensureNamespace(admin, 'bench')
    await ensureNamespace(admin, 'bench-big')
    await admin.ensure('/api/v1/namespaces/bench/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'small' },
      data: { greeting: 'hello' },
    })
    const blob = 'x'.repeat(10 * 1024)
    for (let i = 0; i < 500; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          admin.ensure('/api/v1/namespaces/bench-big/configmaps', {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `big-${i + j}` },
            data: { blob },
          }),
        ),
      )
    }

    // nginx, TLS on both legs, injecting the admin token (it cannot authenticate callers).
    mkdirSync(join(dir, 'nginx-pki'), { recursive: true })
    const nginxCa = createCa(join(dir, 'nginx-pki'), 'bench-nginx-ca')
    const nginxCert = issueCert(nginxCa, 'nginx')
    const nginx = await startNginx({
      dir: join(dir, 'nginx'),
      upstream: info.server,
      upstreamCaFile: info.caFile,
      token: info.adminToken,
      certFile: nginxCert.certFile,
      keyFile: nginxCert.keyFile,
    })
    stopNginx = () => void nginx.proc.stop()

    // Gatehouse as a separate process with a CPU profile.
    const policyDir = writeBenchPolicies(join(dir, 'policies'))
    const gatehouseOptions = {
      issuerUrl: issuer.url,
      issuerCaFile: issuer.caFile,
      server: info.server,
      serverCaFile: info.caFile,
      upstreamTokenFile,
      policyDir,
    }
    const profileDir = join(dir, 'profile')
    const main = await startBenchGatehouse({
      ...gatehouseOptions,
      dataDir: join(dir, 'gatehouse-data'),
      configFile: join(dir, 'gatehouse.yaml'),
      profileDir,
    })
    gatehouse = main.proc
    const gatehouseUrl = main.url
    const gatehouseCa = main.ca
    const ciToken = await issuer.mintGitHubActions({
      repository: 'octo-org/app',
      repository_owner: 'octo-org',
      expiresInSeconds: 3600,
    })

    const subjects: Subject[] = [
      { name: 'direct', base: info.server, token: info.adminToken },
      { name: 'nginx', base: nginx.url, token: undefined },
      { name: 'gatehouse', base: gatehouseUrl, token: ciToken },
    ]
    // wrk does not verify certificates; autocannon and undici do, with each subject's CA.
    const results: Record<string, Record<string, WrkResult>> = {}
    const scenarios = [
      { key: 'small GET', path: '/api/v1/namespaces/bench/configmaps/small', connections: 32 },
      { key: '5 MB list', path: '/api/v1/namespaces/bench-big/configmaps', connections: 4 },
    ]
    for (const s of scenarios) {
      for (const subject of subjects) {
        const r = await runWrk({
          url: subject.base + s.path,
          ...(subject.token ? { token: subject.token } : {}),
          connections: s.connections,
          threads: 2,
          seconds: SECONDS,
        })
        ;(results[s.key] ??= {})[subject.name] = r
        console.log(
          `[bench] ${s.key.padEnd(10)} ${subject.name.padEnd(9)} ${fmt(r.requestsPerSec)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  errors ${r.errors}`,
        )
      }
    }

    // HTTP/1.1 vs HTTP/2 with the same tool: 32 connections, or 4 connections x 8 streams.
    const protocols: Record<string, { h1: H2Result; h2: H2Result }> = {}
    for (const subject of subjects) {
      const common = {
        url: subject.base + scenarios[0]!.path,
        ...(subject.token ? { token: subject.token } : {}),
        seconds: SECONDS,
      }
      const h1 = await runH2load({ ...common, clients: 32, streams: 1, http1: true })
      const h2 = await runH2load({ ...common, clients: 4, streams: 8 })
      protocols[subject.name] = { h1, h2 }
      console.log(
        `[bench] h2load    ${subject.name.padEnd(9)} HTTP/1.1 ${fmt(h1.requestsPerSec)} req/s (mean ${fmt(h1.meanMs, 2)} ms)  ${h2.protocol} ${fmt(h2.requestsPerSec)} req/s (mean ${fmt(h2.meanMs, 2)} ms)  failed ${h1.failed + h2.failed}`,
      )
    }

    const rate = Number(process.env['BENCH_RATE'] ?? 200)
    const fixed: Record<string, Awaited<ReturnType<typeof fixedRate>>> = {}
    process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0' // autocannon has no CA option; loopback only
    for (const subject of subjects) {
      fixed[subject.name] = await fixedRate({
        url: subject.base + scenarios[0]!.path,
        ...(subject.token ? { token: subject.token } : {}),
        rate,
        seconds: SECONDS,
        connections: 8,
      })
    }
    delete process.env['NODE_TLS_REJECT_UNAUTHORIZED']

    const watch: Record<string, Awaited<ReturnType<typeof watchFanOut>>> = {}
    let n = 0
    for (const subject of subjects) {
      const ns = `watch-${subject.name}`
      await ensureNamespace(admin, ns)
      watch[subject.name] = await watchFanOut({
        watchUrl: `${subject.base}/api/v1/namespaces/${ns}/configmaps?watch=true`,
        watchToken: subject.token,
        ca:
          subject.name === 'gatehouse'
            ? gatehouseCa
            : subject.name === 'nginx'
              ? readFileSync(nginxCa.certFile, 'utf8')
              : readFileSync(info.caFile, 'utf8'),
        create: (name) =>
          admin.ensure(`/api/v1/namespaces/${ns}/configmaps`, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `${name}` },
          }),
        watchers: 50,
        events: 20,
      })
      n++
    }

    // Short requests while 2,000 watches are open (each on its own connection).
    const underWatches: Record<string, Awaited<ReturnType<typeof latencyUnderWatches>>> = {}
    process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0' // autocannon has no CA option; loopback only
    for (const subject of subjects) {
      underWatches[subject.name] = await latencyUnderWatches({
        url: subject.base + scenarios[0]!.path,
        watchUrl: `${subject.base}/api/v1/namespaces/watch-${subject.name}/configmaps?watch=true`,
        ...(subject.token ? { token: subject.token } : {}),
        ca:
          subject.name === 'gatehouse'
            ? gatehouseCa
            : subject.name === 'nginx'
              ? readFileSync(nginxCa.certFile, 'utf8')
              : readFileSync(info.caFile, 'utf8'),
        watches: 2000,
        rate,
        seconds: SECONDS,
      })
      const u = underWatches[subject.name]!
      console.log(
        `[bench] ${rate} req/s with ${u.watchesOpen} watches open  ${subject.name.padEnd(9)} p50 ${fmt(u.p50Ms, 2)} ms  p99 ${fmt(u.p99Ms, 2)} ms  errors ${u.errors + u.non2xx}`,
      )
    }
    delete process.env['NODE_TLS_REJECT_UNAUTHORIZED']

    gatehouse.kill('SIGINT')
    await new Promise((r) => gatehouse?.once('exit', r))
    gatehouse = undefined

    // What the durable audit journal costs (docs/audit.md): fresh Gatehouses alike in
    // everything (none profiled) but audit.journal, measured the same way, on and off in turn
    // twice (this machine is shared: alternating keeps drift out of the difference).
    const journalRuns: {
      label: string
      wrk: WrkResult[]
      fixed: Awaited<ReturnType<typeof fixedRate>>[]
    }[] = [
      { label: 'journal on, fsync (default)', wrk: [], fixed: [] },
      { label: 'journal off (memory only)', wrk: [], fixed: [] },
    ]
    for (let round = 0; round < 2; round++) {
      for (const [i, enabled] of [true, false].entries()) {
        const key = `${enabled ? 'on' : 'off'}-${round}`
        const g = await startBenchGatehouse({
          ...gatehouseOptions,
          dataDir: join(dir, `gatehouse-journal-${key}`),
          configFile: join(dir, `gatehouse-journal-${key}.yaml`),
          audit: { journal: { enabled } },
        })
        sessionGatehouses.push(g)
        const url = g.url + scenarios[0]!.path
        const w = await runWrk({
          url,
          token: ciToken,
          connections: 32,
          threads: 2,
          seconds: SECONDS,
        })
        process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0'
        const f = await fixedRate({ url, token: ciToken, rate, seconds: SECONDS, connections: 8 })
        delete process.env['NODE_TLS_REJECT_UNAUTHORIZED']
        await stopGatehouse(g)
        const run = journalRuns[i]!
        run.wrk.push(w)
        run.fixed.push(f)
        console.log(
          `[bench] ${run.label} (round ${round + 1}): ${fmt(w.requestsPerSec)} req/s (p99 ${fmt(w.p99Ms, 2)} ms); at ${rate} req/s p50 ${fmt(f.p50Ms, 2)} ms / p99 ${fmt(f.p99Ms, 2)} ms`,
        )
      }
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

    // Sessions: exec over WebSocket direct, through nginx, and through two fresh Gatehouse
    // processes alike in everything (neither profiled) but sessions.record.
    await ensureNamespace(admin, 'bench-sessions')
    await createRunningPod(admin, 'bench-sessions', 'shell')
    const recordingGatehouse = await startBenchGatehouse({
      ...gatehouseOptions,
      dataDir: join(dir, 'gatehouse-sessions-data'),
      configFile: join(dir, 'gatehouse-sessions.yaml'),
    })
    sessionGatehouses.push(recordingGatehouse)
    const passThroughGatehouse = await startBenchGatehouse({
      ...gatehouseOptions,
      dataDir: join(dir, 'gatehouse-sessions-unrecorded-data'),
      configFile: join(dir, 'gatehouse-sessions-unrecorded.yaml'),
      sessions: { record: false },
    })
    sessionGatehouses.push(passThroughGatehouse)
    const sessions = await runSessionBench({
      direct: {
        name: 'direct',
        base: info.server,
        token: info.adminToken,
        ca: readFileSync(info.caFile, 'utf8'),
      },
      nginx: {
        name: 'nginx',
        base: nginx.url,
        token: undefined,
        ca: readFileSync(nginxCa.certFile, 'utf8'),
      },
      recorded: {
        name: 'gatehouse',
        base: recordingGatehouse.url,
        token: ciToken,
        ca: recordingGatehouse.ca,
        pid: recordingGatehouse.pid,
        recordingsDir: join(recordingGatehouse.dataDir, 'recordings'),
      },
      unrecorded: {
        name: 'gatehouse(no recording)',
        base: passThroughGatehouse.url,
        token: ciToken,
        ca: passThroughGatehouse.ca,
        pid: passThroughGatehouse.pid,
        recordingsDir: join(passThroughGatehouse.dataDir, 'recordings'),
      },
      namespace: 'bench-sessions',
      pod: 'shell',
      seconds: SECONDS,
      maxSessions: Number(process.env['BENCH_SESSIONS'] ?? 200),
      stdoutBytes: Number(process.env['BENCH_SESSION_BYTES'] ?? 100_000_000),
      stdoutRuns: Number(process.env['BENCH_SESSION_RUNS'] ?? 3),
      log: (line) => console.log(`[bench] ${line}`),
    })
    console.log(sessions.lines.join('\n'))
    for (const g of sessionGatehouses.splice(0)) await stopGatehouse(g)

    // Masking: the same 10,000-Secret list and 100 MB log, direct and through two Gatehouse
    // processes alike but for their policy's mask (sessions.record off in both: the log is not
    // recorded, so only response masking differs).
    const secretCount = Number(process.env['BENCH_SECRETS'] ?? 10_000)
    await ensureNamespace(admin, 'bench-secrets')
    for (let i = 0; i < secretCount; i += 50)
      await Promise.all(
        Array.from({ length: Math.min(50, secretCount - i) }, (_, j) =>
          admin.ensure('/api/v1/namespaces/bench-secrets/secrets', {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: `s-${i + j}`, labels: { app: 'bench' } },
            type: 'Opaque',
            data: {
              password: Buffer.from(`pw-${i + j}-${'x'.repeat(24)}`).toString('base64'),
              user: Buffer.from('app').toString('base64'),
            },
          }),
        ),
      )
    const logBytes = Number(process.env['BENCH_LOG_BYTES'] ?? 100_000_000)
    await ensureNamespace(admin, 'bench-logs')
    await createRunningPod(admin, 'bench-logs', 'logger', {
      annotations: { 'gatehouse.test/log-bytes': String(logBytes) },
    })
    const maskPolicies = writeMaskingPolicies(join(dir, 'masking-policies'))
    for (const [name, policies] of [
      ['masked', maskPolicies.masked],
      ['unmasked', maskPolicies.unmasked],
    ] as const)
      sessionGatehouses.push(
        await startBenchGatehouse({
          ...gatehouseOptions,
          policyDir: policies,
          dataDir: join(dir, `gatehouse-${name}-data`),
          configFile: join(dir, `gatehouse-${name}.yaml`),
          sessions: { record: false },
        }),
      )
    const [maskedGatehouse, unmaskedGatehouse] = sessionGatehouses
    const masking = await measureMasking(
      [
        {
          name: 'direct',
          base: info.server,
          token: info.adminToken,
          ca: readFileSync(info.caFile, 'utf8'),
        },
        {
          name: 'gatehouse unmasked',
          base: unmaskedGatehouse!.url,
          token: ciToken,
          ca: unmaskedGatehouse!.ca,
          pid: unmaskedGatehouse!.pid,
        },
        {
          name: 'gatehouse masked',
          base: maskedGatehouse!.url,
          token: ciToken,
          ca: maskedGatehouse!.ca,
          pid: maskedGatehouse!.pid,
        },
      ],
      [
        {
          name: `${secretCount} Secrets list`,
          path: '/api/v1/namespaces/bench-secrets/secrets',
          runs: Number(process.env['BENCH_MASK_RUNS'] ?? 5),
        },
        {
          name: `${Math.round(logBytes / 1e6)} MB log`,
          path: '/api/v1/namespaces/bench-logs/pods/logger/log',
          runs: 2,
        },
      ],
    )
    const maskingLines = maskingReport(masking)
    console.log(maskingLines.join('\n'))
    for (const g of sessionGatehouses.splice(0)) await stopGatehouse(g)

    // writes decided on the stored object: dry run + get before the write, as measured here
    for (const ns of ['bench', CONDITION_NAMESPACE]) {
      await ensureNamespace(admin, ns)
      await admin.ensure(`/api/v1/namespaces/${ns}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'patched' },
        data: { n: '0' },
      })
    }
    const patchCount = Number(process.env['BENCH_PATCHES'] ?? 300)
    const patches = [
      await measurePatches({
        name: 'direct',
        url: `${info.server}/api/v1/namespaces/bench/configmaps/patched`,
        token: info.adminToken,
        ca: readFileSync(info.caFile, 'utf8'),
        count: patchCount,
      }),
      await measurePatches({
        name: 'gatehouse, no rule reads object',
        url: `${gatehouseUrl}/api/v1/namespaces/bench/configmaps/patched`,
        token: ciToken,
        ca: gatehouseCa,
        count: patchCount,
      }),
      await measurePatches({
        name: 'gatehouse, a deny reads object (dry run, pinned)',
        url: `${gatehouseUrl}/api/v1/namespaces/${CONDITION_NAMESPACE}/configmaps/patched`,
        token: ciToken,
        ca: gatehouseCa,
        count: patchCount,
      }),
    ]
    for (const p of patches)
      console.log(
        `[bench] patch ${p.name}: mean ${fmt(p.meanMs, 2)} ms, p50 ${fmt(p.p50Ms, 2)} ms, p99 ${fmt(p.p99Ms, 2)} ms, errors ${p.errors}`,
      )
    const decodes = measureBodyDecode()
    for (const d of decodes)
      console.log(
        `[bench] strict body decode ${d.body}: ${d.bytes} bytes in ${fmt(d.ms, 3)} ms (${fmt(d.mbPerSec, 1)} MB/s)`,
      )

    const decision = measureDecisionCost(policyDir)
    console.log(
      `[bench] policy decision with ${decision.rules} rules: mean ${fmt(decision.meanMicros, 2)} µs, p99 ${fmt(decision.p99Micros, 2)} µs (compiled in ${fmt(decision.compileMs)} ms)`,
    )
    const writes = await measureAuditThroughput(dir, PG_URL)
    for (const w of writes)
      console.log(
        `[bench] audit writes into ${w.store}: ${fmt(w.recordsPerSec, 0)} records/s (${w.records} records)`,
      )
    const journalCost = await measureJournalCost(dir)
    console.log(
      `[bench] audit journal: ${fmt(journalCost.appendsPerSec, 0)} appends/s at ${journalCost.concurrency} concurrent, ${fmt(journalCost.cpuMicrosPerAppend, 1)} µs CPU per append, wait p50 ${fmt(journalCost.p50Ms, 2)} ms / p99 ${fmt(journalCost.p99Ms, 2)} ms`,
    )

    const loginFlood = await measureLoginFlood(join(dir, 'login-flood'))
    console.log(`[bench] ${loginFloodReport(loginFlood).at(-1)}`)

    const ratio = (key: string): string =>
      fmt(results[key]!['gatehouse']!.requestsPerSec / results[key]!['nginx']!.requestsPerSec, 2)
    const lines = [
      '',
      `## Gatehouse benchmark (${new Date().toISOString()}, ${SECONDS}s per measurement, node ${process.version})`,
      '',
      '| scenario | direct req/s | nginx req/s | gatehouse req/s | gatehouse/nginx | gatehouse/direct |',
      '|---|---|---|---|---|---|',
      ...scenarios.map((s) => {
        const r = results[s.key]!
        return `| ${s.key} (${s.connections} conns) | ${fmt(r['direct']!.requestsPerSec)} | ${fmt(r['nginx']!.requestsPerSec)} | ${fmt(r['gatehouse']!.requestsPerSec)} | ${ratio(s.key)} | ${fmt(r['gatehouse']!.requestsPerSec / r['direct']!.requestsPerSec, 2)} |`
      }),
      '',
      'Small GET with h2load, HTTP/1.1 (32 connections) vs HTTP/2 (4 connections x 8 streams):',
      '',
      '| subject | HTTP/1.1 req/s | HTTP/2 req/s | HTTP/2 mean ms |',
      '|---|---|---|---|',
      ...subjects.map(
        (s) =>
          `| ${s.name} | ${fmt(protocols[s.name]!.h1.requestsPerSec)} | ${fmt(protocols[s.name]!.h2.requestsPerSec)} (${protocols[s.name]!.h2.protocol}) | ${fmt(protocols[s.name]!.h2.meanMs, 2)} |`,
      ),
      '',
      `Latency at a fixed ${rate} req/s (small GET): ` +
        subjects
          .map(
            (s) =>
              `${s.name} p50 ${fmt(fixed[s.name]!.p50Ms, 2)} ms / p99 ${fmt(fixed[s.name]!.p99Ms, 2)} ms (errors ${fixed[s.name]!.errors + fixed[s.name]!.non2xx})`,
          )
          .join('; '),
      '',
      `Latency at a fixed ${rate} req/s (small GET) while 2,000 watches are open: ` +
        subjects
          .map(
            (s) =>
              `${s.name} p50 ${fmt(underWatches[s.name]!.p50Ms, 2)} ms / p99 ${fmt(underWatches[s.name]!.p99Ms, 2)} ms (${underWatches[s.name]!.watchesOpen} watches open, errors ${underWatches[s.name]!.errors + underWatches[s.name]!.non2xx})`,
          )
          .join('; '),
      '',
      `Watch fan-out (50 watchers × 20 events): ` +
        subjects
          .map(
            (s) =>
              `${s.name} p50 ${fmt(watch[s.name]!.p50Ms, 2)} ms / p99 ${fmt(watch[s.name]!.p99Ms, 2)} ms, ${watch[s.name]!.delivered}/${watch[s.name]!.expected} delivered`,
          )
          .join('; '),
      '',
    ]
    lines.push(
      'Audit journal (every forwarded request durable before forwarding), small GET, fresh Gatehouses on and off in turn, mean of 2 rounds:',
      '',
      `| audit.journal | req/s (32 conns) | p99 ms (32 conns) | p50 / p99 ms at ${rate} req/s |`,
      '|---|---|---|---|',
      `The journal alone (in-process, ${journalCost.appends} appends, ${journalCost.concurrency} at a time, fdatasync on): ${fmt(journalCost.appendsPerSec, 0)} appends/s, ${fmt(journalCost.cpuMicrosPerAppend, 1)} µs of CPU per append (all threads), each request waits p50 ${fmt(journalCost.p50Ms, 2)} ms / p99 ${fmt(journalCost.p99Ms, 2)} ms for its record to be on disk.`,
      '',
      ...journalRuns.map(
        (j) =>
          `| ${j.label} | ${fmt(mean(j.wrk.map((w) => w.requestsPerSec)))} | ${fmt(mean(j.wrk.map((w) => w.p99Ms)), 2)} | ${fmt(mean(j.fixed.map((f) => f.p50Ms)), 2)} / ${fmt(mean(j.fixed.map((f) => f.p99Ms)), 2)} |`,
      ),
      '',
    )
    const writeTargets: Record<string, number> = { sqlite: 20_000, postgres: 10_000 }
    lines.push(
      `Policy decision cost with ${decision.rules} rules loaded (in-process, 200,000 decisions over 512 request shapes): mean ${fmt(decision.meanMicros, 2)} µs, p99 of 100-decision blocks ${fmt(decision.p99Micros, 2)} µs per decision, ${fmt(decision.decisionsPerSec, 0)} decisions/s; compiled in ${fmt(decision.compileMs)} ms. The Gatehouse runs above had the same rules loaded and audited every request into SQLite.`,
      '',
      '| audit store | records/s (AuditWriter, batches of 500) | target |',
      '|---|---|---|',
      ...writes.map(
        (w) =>
          `| ${w.store} | ${fmt(w.recordsPerSec, 0)} | ${writeTargets[w.store]} (${w.recordsPerSec >= writeTargets[w.store]! ? 'met' : 'NOT met'}) |`,
      ),
      '',
    )
    lines.push(
      `Writes decided on the stored object (${patchCount} sequential merge patches of one ConfigMap each):`,
      '',
      '| path | mean ms | p50 ms | p99 ms | errors |',
      '|---|---|---|---|---|',
      ...patches.map(
        (p) =>
          `| ${p.name} | ${fmt(p.meanMs, 2)} | ${fmt(p.p50Ms, 2)} | ${fmt(p.p99Ms, 2)} | ${p.errors} |`,
      ),
      '',
      '| strict body decode (in-process) | bytes | ms | MB/s |',
      '|---|---|---|---|',
      ...decodes.map((d) => `| ${d.body} | ${d.bytes} | ${fmt(d.ms, 3)} | ${fmt(d.mbPerSec, 1)} |`),
      '',
    )
    lines.push('```', ...sessions.lines, '```', '')
    lines.push(
      'Masking detectors on adversarial text (least of 5 runs, in-process):',
      '',
      ...detectorLinearity(),
      '',
    )
    lines.push(
      'Masking (the same responses direct, through Gatehouse unmasked and masked):',
      '',
      '```',
      ...maskingLines,
      '```',
      '',
    )
    lines.push(...loginFloodReport(loginFlood), '')
    const profiles = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
    if (profiles[0])
      lines.push(
        '### Where Gatehouse spends CPU (whole run)',
        '',
        '```',
        summarizeProfile(join(profileDir, profiles[0])),
        '```',
        '',
      )
    const smallRatio =
      results['small GET']!['gatehouse']!.requestsPerSec /
      results['small GET']!['nginx']!.requestsPerSec
    lines.push(
      `Target: gatehouse/nginx >= 0.5 for small GETs: ${smallRatio >= 0.5 ? 'met' : 'NOT met'} (${fmt(smallRatio, 2)}).`,
    )
    const report = lines.join('\n')
    console.log(report)
    writeFileSync(join(dir, 'report.md'), report)
    console.log(`[bench] report written to ${join(dir, 'report.md')} (${n} watch runs)`)
    if (sessions.failures.length)
      throw new Error(`session benchmark failed:\n  ${sessions.failures.join('\n  ')}`)
  } finally {
    gatehouse?.kill('SIGKILL')
    for (const g of sessionGatehouses) g.proc.kill('SIGKILL')
    stopNginx?.()
    await issuer.close()
    await cluster.stop()
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(
      `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    )
    process.exit(1)
  },
)
