// The masking benchmark: the same responses fetched direct, through a Gatehouse whose policy
// turns masking off (the response passes through) and through one that masks it, in one run:
// - a list of 10,000 Secrets (one GET, JSON, as kubectl get secrets -o json asks for it);
// - a 100 MB pod log (every 50th line carries a card number).
// For each: throughput (response MB/s, counted on what the client received), the time to the
// whole body, and the Gatehouse process's peak resident memory while it served the requests
// (sampled from /proc every 20 ms, above its resident size just before), which shows whether
// masking holds responses whole.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'

export interface MaskingTarget {
  name: string
  base: string
  token: string
  ca: string
  /** The Gatehouse process, for its memory; absent for direct. */
  pid?: number
}

export interface MaskingMeasurement {
  target: string
  workload: string
  runs: number
  /** Bytes the client received per run. */
  bytes: number
  mbPerSec: number
  /** Median time to the whole body, ms. */
  p50Ms: number
  /** Peak resident memory above the process's resident size before the runs, MiB. */
  peakExtraMiB?: number
  /** Values masked in one response, from the Warning header (or counted in the body). */
  masked: number
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}

async function fetchOnce(
  t: MaskingTarget,
  agent: Agent,
  path: string,
): Promise<{ ms: number; bytes: number; masked: number }> {
  const t0 = performance.now()
  const res = await request(`${t.base}${path}`, {
    dispatcher: agent,
    headers: { authorization: `Bearer ${t.token}`, accept: 'application/json' },
    bodyTimeout: 0,
    headersTimeout: 120_000,
  })
  let bytes = 0
  let placeholders = 0
  let tail = ''
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    const text = tail + chunk.toString('latin1')
    placeholders += (text.match(/\[MASKED:|W01BU0tFRD/g) ?? []).length
    tail = text.slice(-16)
  }
  if (res.statusCode !== 200) throw new Error(`${t.name} ${path}: ${res.statusCode}`)
  const warning = String(res.headers['warning'] ?? '')
  const counted = /masked (\d+) value/.exec(warning)
  return { ms: performance.now() - t0, bytes, masked: counted ? Number(counted[1]) : placeholders }
}

export async function measureMasking(
  targets: MaskingTarget[],
  workloads: { name: string; path: string; runs: number }[],
): Promise<MaskingMeasurement[]> {
  const out: MaskingMeasurement[] = []
  for (const w of workloads)
    for (const t of targets) {
      const agent = new Agent({ connect: { ca: t.ca }, connections: 1 })
      try {
        await fetchOnce(t, agent, w.path) // warm-up: connections, caches, JIT
        const before = t.pid ? rssKiB(t.pid) : 0
        let peak = before
        const sampler = t.pid
          ? setInterval(() => {
              peak = Math.max(peak, rssKiB(t.pid!))
            }, 20)
          : undefined
        const times: number[] = []
        let bytes = 0
        let masked = 0
        const t0 = performance.now()
        for (let i = 0; i < w.runs; i++) {
          const r = await fetchOnce(t, agent, w.path)
          times.push(r.ms)
          bytes = r.bytes
          masked = r.masked
        }
        const seconds = (performance.now() - t0) / 1000
        clearInterval(sampler)
        if (t.pid) peak = Math.max(peak, rssKiB(t.pid))
        times.sort((a, b) => a - b)
        out.push({
          target: t.name,
          workload: w.name,
          runs: w.runs,
          bytes,
          mbPerSec: (bytes * w.runs) / 1e6 / seconds,
          p50Ms: times[Math.floor(times.length / 2)]!,
          ...(t.pid ? { peakExtraMiB: (peak - before) / 1024 } : {}),
          masked,
        })
      } finally {
        await agent.close()
      }
    }
  return out
}

export function maskingReport(results: MaskingMeasurement[]): string[] {
  const lines = [
    'workload             target               runs   MB/resp     MB/s   p50 ms  peak +MiB   masked',
  ]
  for (const r of results)
    lines.push(
      [
        r.workload.padEnd(20),
        r.target.padEnd(20),
        String(r.runs).padStart(4),
        (r.bytes / 1e6).toFixed(1).padStart(9),
        r.mbPerSec.toFixed(1).padStart(8),
        r.p50Ms.toFixed(0).padStart(8),
        (r.peakExtraMiB === undefined ? '-' : r.peakExtraMiB.toFixed(0)).padStart(10),
        String(r.masked).padStart(8),
      ].join(' '),
    )
  const ratio = (workload: string): string => {
    const get = (t: string) => results.find((r) => r.workload === workload && r.target === t)
    const masked = get('gatehouse masked')
    const plain = get('gatehouse unmasked')
    const direct = get('direct')
    if (!masked || !plain || !direct) return ''
    return `${workload}: masked/unmasked throughput ${(masked.mbPerSec / plain.mbPerSec).toFixed(2)}, masked/direct ${(masked.mbPerSec / direct.mbPerSec).toFixed(2)}`
  }
  const workloads = [...new Set(results.map((r) => r.workload))]
  lines.push('', ...workloads.map(ratio).filter(Boolean))
  return lines
}

/** Two policy folders alike but for masking: every request allowed, masked or not. */
export function writeMaskingPolicies(dir: string): { masked: string; unmasked: string } {
  const write = (name: string, mask: boolean): string => {
    const folder = join(dir, name)
    mkdirSync(folder, { recursive: true })
    writeFileSync(
      join(folder, 'allow.yaml'),
      `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: bench-${name}
spec:
  subjects:
    - claims: { repository: 'octo-org/*' }
  mask: { enabled: ${mask} }
  rules:
    - name: everything
      action: allow
      verbs: ['*']
`,
    )
    return folder
  }
  return { masked: write('masked', true), unmasked: write('unmasked', false) }
}
