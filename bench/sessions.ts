// The session benchmark: exec over WebSocket (v5.channel.k8s.io, what kubectl >= 1.30 speaks)
// direct, through nginx and through Gatehouse with and without session recording. Measures the
// start latency of short sessions (`echo hi`: from opening the connection until the exit status
// arrived and the socket closed) and the throughput of one large stdout stream (`bytes N`, the
// fake container's command that writes N bytes), counting every byte received.
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { constants, createGunzip } from 'node:zlib'
import WebSocket from 'ws'

const STDOUT = 1
const STDERR = 2
const ERROR = 3

export interface ExecTarget {
  name: string
  /** https://host:port of the API server, nginx or Gatehouse. */
  base: string
  /** Bearer token to send; undefined when the proxy injects one (nginx). */
  token: string | undefined
  /** PEM of the CA that signed the target's serving certificate. */
  ca: string
}

export interface ExecOutcome {
  /** From opening the connection until the exit status arrived and the socket closed. */
  ms: number
  /** Until the first stdout byte (0 when there was none). */
  firstStdoutMs: number
  stdoutBytes: number
  /** The first 4 KiB of stdout, for checks. */
  stdoutHead: string
  stderr: string
  /** The Status on the error channel (v5: JSON). */
  status: { status?: string; message?: string; reason?: string } | undefined
  closeCode: number
}

function execUrl(base: string, namespace: string, pod: string, command: string[]): string {
  const q = new URLSearchParams()
  for (const c of command) q.append('command', c)
  q.set('stdout', 'true')
  q.set('stderr', 'true')
  return `${base.replace(/^http/, 'ws')}/api/v1/namespaces/${namespace}/pods/${pod}/exec?${q.toString()}`
}

/** One exec session; rejects on a refused upgrade, a timeout or a connection error. */
export function execOnce(
  target: ExecTarget,
  namespace: string,
  pod: string,
  command: string[],
  timeoutMs = 60_000,
): Promise<ExecOutcome> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const ws = new WebSocket(execUrl(target.base, namespace, pod, command), ['v5.channel.k8s.io'], {
      ca: target.ca,
      perMessageDeflate: false, // kubectl does not offer compression either
      headers: target.token ? { authorization: `Bearer ${target.token}` } : {},
    })
    let firstStdoutMs = 0
    let stdoutBytes = 0
    let stdoutHead = ''
    let stderr = ''
    let statusText: string | undefined
    let settled = false
    const finish = (err: Error | undefined, outcome?: ExecOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) {
        ws.terminate()
        reject(err)
      } else resolve(outcome!)
    }
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `${target.name}: exec ${command.join(' ')} did not end within ${timeoutMs} ms (${stdoutBytes} stdout bytes so far)`,
          ),
        ),
      timeoutMs,
    )
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () =>
        finish(
          new Error(
            `${target.name}: exec upgrade answered ${res.statusCode}: ${body.slice(0, 500)}`,
          ),
        ),
      )
      res.on('error', (e) => finish(e))
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length === 0) return
      const channel = data[0]
      if (channel === STDOUT) {
        if (data.length > 1 && stdoutBytes === 0) firstStdoutMs = performance.now() - t0
        if (stdoutHead.length < 4096)
          stdoutHead += data.subarray(1, 1 + 4096 - stdoutHead.length).toString('latin1')
        stdoutBytes += data.length - 1
      } else if (channel === STDERR) stderr += data.subarray(1).toString('utf8')
      else if (channel === ERROR) statusText = (statusText ?? '') + data.subarray(1).toString()
    })
    ws.on('error', (e) => finish(new Error(`${target.name}: ${e.message}`)))
    ws.on('close', (code) => {
      const ms = performance.now() - t0
      let status: ExecOutcome['status']
      try {
        status = statusText ? (JSON.parse(statusText) as ExecOutcome['status']) : undefined
      } catch {
        status = { message: statusText ?? '' }
      }
      finish(undefined, {
        ms,
        firstStdoutMs,
        stdoutBytes,
        stdoutHead,
        stderr,
        status,
        closeCode: code,
      })
    })
  })
}

function check(target: ExecTarget, command: string[], o: ExecOutcome): void {
  if (o.status?.status !== 'Success')
    throw new Error(
      `${target.name}: exec ${command.join(' ')} ended without a Success status (got ${JSON.stringify(o.status)}, close code ${o.closeCode}, stderr ${JSON.stringify(o.stderr.slice(0, 300))})`,
    )
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export interface StartLatency {
  sessions: number
  p50Ms: number
  p99Ms: number
  meanMs: number
}

/**
 * Sequential `echo hi` sessions, one subject after the other in rounds (so that background load
 * on the machine falls on every subject alike), until `maxSessions` each or the time is up.
 */
export async function measureStartLatency(opts: {
  targets: ExecTarget[]
  namespace: string
  pod: string
  maxSessions: number
  minSessions: number
  seconds: number
  log?: (line: string) => void
}): Promise<Record<string, StartLatency>> {
  const command = ['echo', 'hi']
  const samples = new Map<string, number[]>(opts.targets.map((t) => [t.name, []]))
  const run = async (t: ExecTarget): Promise<number> => {
    const o = await execOnce(t, opts.namespace, opts.pod, command, 30_000)
    check(t, command, o)
    if (o.stdoutHead !== 'hi\n')
      throw new Error(`${t.name}: echo hi printed ${JSON.stringify(o.stdoutHead)}`)
    return o.ms
  }
  for (const t of opts.targets) for (let i = 0; i < 5; i++) await run(t) // warm-up
  const deadline = performance.now() + opts.seconds * 1000 * opts.targets.length
  let rounds = 0
  while (rounds < opts.maxSessions && (rounds < opts.minSessions || performance.now() < deadline)) {
    for (const t of opts.targets) samples.get(t.name)!.push(await run(t))
    rounds++
    if (rounds % 50 === 0) opts.log?.(`${rounds} sessions per subject`)
  }
  const out: Record<string, StartLatency> = {}
  for (const [name, s] of samples) {
    const sorted = [...s].sort((a, b) => a - b)
    out[name] = {
      sessions: s.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      meanMs: s.reduce((a, b) => a + b, 0) / s.length,
    }
  }
  return out
}

export interface StdoutThroughput {
  bytes: number
  expected: number
  seconds: number
  mbPerSec: number
  /** CPU seconds the proxy process spent (Gatehouse only: read from /proc). */
  proxyCpuSeconds?: number
  /** The proxy process's peak resident memory (VmHWM) after the session, MiB. */
  proxyPeakRssMiB?: number
  error?: string
}

/** CPU time (user + system) of a process, in seconds, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime and stime are fields 14 and 15, in clock ticks (100/s)
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Peak resident set size of a process (VmHWM), in MiB, from /proc (Linux). */
export function processPeakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

/** One `bytes N` session, reading the whole stream; the byte count is checked by the caller. */
export async function measureStdoutThroughput(opts: {
  target: ExecTarget
  namespace: string
  pod: string
  bytes: number
  pid?: number
}): Promise<StdoutThroughput> {
  const command = ['bytes', String(opts.bytes)]
  const cpu0 = opts.pid ? processCpuSeconds(opts.pid) : 0
  try {
    const o = await execOnce(opts.target, opts.namespace, opts.pod, command, 600_000)
    check(opts.target, command, o)
    const seconds = o.ms / 1000
    return {
      bytes: o.stdoutBytes,
      expected: opts.bytes,
      seconds,
      mbPerSec: o.stdoutBytes / 1e6 / seconds,
      ...(opts.pid
        ? {
            proxyCpuSeconds: processCpuSeconds(opts.pid) - cpu0,
            proxyPeakRssMiB: processPeakRssMiB(opts.pid),
          }
        : {}),
      ...(o.stdoutBytes !== opts.bytes
        ? { error: `received ${o.stdoutBytes} stdout bytes, expected ${opts.bytes}` }
        : {}),
    }
  } catch (e) {
    return {
      bytes: 0,
      expected: opts.bytes,
      seconds: Number.NaN,
      mbPerSec: Number.NaN,
      error: e instanceof Error ? e.message : String(e),
    }
  }
}

/** Stdout bytes held in a recording ('o' events as UTF-8 text, 'ob' as base64), streamed. */
export async function recordedStdoutBytes(file: string): Promise<number> {
  const input = createReadStream(file).pipe(createGunzip({ finishFlush: constants.Z_SYNC_FLUSH }))
  let bytes = 0
  let header = true
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (!line) continue
    if (header) {
      header = false
      continue
    }
    const [, code, data] = JSON.parse(line) as [number, string, unknown]
    if (typeof data !== 'string') continue
    if (code === 'o') bytes += Buffer.byteLength(data, 'utf8')
    else if (code === 'ob') bytes += Buffer.from(data, 'base64').length
  }
  return bytes
}

/** Recording files under a directory (yyyy/mm/dd/<id>.cast.gz), with their sizes. */
export function listRecordings(dir: string): { file: string; size: number }[] {
  let names: string[]
  try {
    names = readdirSync(dir, { recursive: true }) as string[]
  } catch {
    return []
  }
  return names
    .filter((n) => n.endsWith('.cast.gz'))
    .map((n) => ({ file: join(dir, n), size: statSync(join(dir, n)).size }))
}

export interface SessionBenchResult {
  start: Record<string, StartLatency>
  /** The median run of each subject. */
  stdout: Record<string, StdoutThroughput>
  /** The 100 MB session's recording on the recording Gatehouse. */
  recording?: { compressedBytes: number; stdoutBytes: number }
  /** The console section and the report's section. */
  lines: string[]
  /** What must fail the bench (wrong byte counts, sessions that did not complete). */
  failures: string[]
}

const fmt = (n: number | undefined, digits = 1): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : 'n/a'

/**
 * The whole session benchmark. Subjects are named direct, nginx, gatehouse (recording on) and
 * gatehouse(no recording); the two Gatehouse processes differ only in `sessions.record`.
 */
export async function runSessionBench(opts: {
  direct: ExecTarget
  nginx: ExecTarget
  recorded: ExecTarget & { pid: number; recordingsDir: string }
  unrecorded: ExecTarget & { pid: number; recordingsDir: string }
  namespace: string
  pod: string
  seconds: number
  maxSessions: number
  stdoutBytes: number
  /** How many times each subject runs the large stdout session (the median is reported). */
  stdoutRuns: number
  log: (line: string) => void
}): Promise<SessionBenchResult> {
  const targets = [opts.direct, opts.nginx, opts.recorded, opts.unrecorded]
  const failures: string[] = []
  const start = await measureStartLatency({
    targets,
    namespace: opts.namespace,
    pod: opts.pod,
    maxSessions: opts.maxSessions,
    minSessions: 50,
    seconds: opts.seconds,
    log: (l) => opts.log(`session start: ${l}`),
  })
  for (const t of targets)
    opts.log(
      `session start ${t.name.padEnd(23)} ${start[t.name]!.sessions} sessions  p50 ${fmt(start[t.name]!.p50Ms, 2)} ms  p99 ${fmt(start[t.name]!.p99Ms, 2)} ms  mean ${fmt(start[t.name]!.meanMs, 2)} ms`,
    )

  // Large stdout: `runs` rounds over the subjects (interleaved, like the start latency); the
  // median run of each subject is reported. Every run must deliver every byte.
  const recordingsBefore = new Set(listRecordings(opts.recorded.recordingsDir).map((r) => r.file))
  const runs: Record<string, StdoutThroughput[]> = Object.fromEntries(
    targets.map((t) => [t.name, []]),
  )
  for (let round = 0; round < opts.stdoutRuns; round++)
    for (const t of targets) {
      const pid =
        t === opts.recorded ? opts.recorded.pid : t === opts.unrecorded ? opts.unrecorded.pid : 0
      const r = await measureStdoutThroughput({
        target: t,
        namespace: opts.namespace,
        pod: opts.pod,
        bytes: opts.stdoutBytes,
        ...(pid ? { pid } : {}),
      })
      runs[t.name]!.push(r)
      opts.log(
        `session stdout ${t.name.padEnd(23)} ${r.bytes} bytes in ${fmt(r.seconds, 2)} s  ${fmt(r.mbPerSec)} MB/s${r.proxyCpuSeconds !== undefined ? `  proxy CPU ${fmt(r.proxyCpuSeconds, 2)} s, peak RSS ${fmt(r.proxyPeakRssMiB, 0)} MiB` : ''}${r.error ? `  ERROR ${r.error}` : ''}`,
      )
      if (r.error) failures.push(`stdout ${t.name} (run ${round + 1}): ${r.error}`)
    }
  const stdout: Record<string, StdoutThroughput> = {}
  for (const t of targets) {
    const sorted = [...runs[t.name]!].sort(
      (a, b) =>
        (Number.isNaN(a.mbPerSec) ? -1 : a.mbPerSec) - (Number.isNaN(b.mbPerSec) ? -1 : b.mbPerSec),
    )
    stdout[t.name] = sorted[Math.floor((sorted.length - 1) / 2)]!
  }

  // The recordings of the large sessions: written as they went, complete once a session ended.
  let recording: SessionBenchResult['recording']
  await new Promise((r) => setTimeout(r, 1000))
  const fresh = listRecordings(opts.recorded.recordingsDir)
    .filter((r) => !recordingsBefore.has(r.file))
    .sort((a, b) => b.size - a.size)
    .slice(0, opts.stdoutRuns)
  if (fresh.length < opts.stdoutRuns)
    failures.push(
      `gatehouse: ${fresh.length} recordings of the ${opts.stdoutRuns} large stdout sessions were written`,
    )
  for (const f of fresh) {
    const inRecording = await recordedStdoutBytes(f.file)
    recording ??= { compressedBytes: f.size, stdoutBytes: inRecording }
    if (inRecording !== opts.stdoutBytes)
      failures.push(
        `gatehouse: the recording ${f.file} holds ${inRecording} stdout bytes, the container wrote ${opts.stdoutBytes}`,
      )
  }
  const unrecordedFiles = listRecordings(opts.unrecorded.recordingsDir)
  if (unrecordedFiles.length)
    failures.push(
      `gatehouse(no recording): ${unrecordedFiles.length} recordings written although sessions.record is false`,
    )

  const p50 = (name: string): number => start[name]!.p50Ms
  const mbs = (name: string): number => stdout[name]!.mbPerSec
  const [d, n, g, u] = targets.map((t) => t.name) as [string, string, string, string]
  const mb = opts.stdoutBytes / 1e6
  const lines = [
    'sessions (exec over WebSocket v5)',
    `  start latency p50/p99 ms (${start[g]!.sessions} sessions each, interleaved): ` +
      targets
        .map((t) => `${t.name} ${fmt(start[t.name]!.p50Ms)}/${fmt(start[t.name]!.p99Ms)}`)
        .join('  '),
    `  stdout ${fmt(mb, 0)} MB (median of ${opts.stdoutRuns}): direct ${fmt(mbs(d), 0)} MB/s  nginx ${fmt(mbs(n), 0)} MB/s  gatehouse ${fmt(mbs(g), 0)} MB/s (recording)  gatehouse ${fmt(mbs(u), 0)} MB/s (no recording)`,
    `  ratios: gatehouse/nginx start p50 ${fmt(p50(g) / p50(n), 2)}, throughput ${fmt(mbs(g) / mbs(n), 2)}; recording cost ${fmt(mbs(g) / mbs(u), 2)}`,
    `  start p50 vs direct / nginx: gatehouse ${fmt(p50(g) / p50(d), 2)} / ${fmt(p50(g) / p50(n), 2)} (+${fmt(p50(g) - p50(d))} ms over direct)  gatehouse(no recording) ${fmt(p50(u) / p50(d), 2)} / ${fmt(p50(u) / p50(n), 2)} (+${fmt(p50(u) - p50(d))} ms)  nginx ${fmt(p50(n) / p50(d), 2)} / 1.00`,
    `  throughput vs direct / nginx: gatehouse ${fmt(mbs(g) / mbs(d), 2)} / ${fmt(mbs(g) / mbs(n), 2)}  gatehouse(no recording) ${fmt(mbs(u) / mbs(d), 2)} / ${fmt(mbs(u) / mbs(n), 2)}  nginx ${fmt(mbs(n) / mbs(d), 2)} / 1.00`,
    `  Gatehouse CPU for the ${fmt(mb, 0)} MB session: ${fmt(stdout[g]!.proxyCpuSeconds, 2)} s recording, ${fmt(stdout[u]!.proxyCpuSeconds, 2)} s not recording (peak RSS ${fmt(stdout[g]!.proxyPeakRssMiB, 0)} / ${fmt(stdout[u]!.proxyPeakRssMiB, 0)} MiB); ` +
      (recording
        ? `a recording: ${fmt(recording.compressedBytes / 1024, 0)} KiB gzip holding ${recording.stdoutBytes} stdout bytes`
        : 'no recording found'),
  ]
  if (failures.length) lines.push(...failures.map((f) => `  FAILED: ${f}`))
  return { start, stdout, ...(recording ? { recording } : {}), lines, failures }
}
