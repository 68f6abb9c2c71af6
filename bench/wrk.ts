// Maximum throughput with wrk (Debian's wrk 4), parsed from its --latency report.
import { execFile } from 'node:child_process'

export interface WrkResult {
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
  transferPerSec: string
  errors: number
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim())
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
}

export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN')
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''
  const errors =
    [...out.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((a, m) => a + Number(m[2]), 0) +
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return {
    requestsPerSec: rps,
    p50Ms: toMs(p50),
    p99Ms: toMs(p99),
    transferPerSec: /Transfer\/sec:\s+(\S+)/.exec(out)?.[1] ?? '',
    errors,
  }
}

export function runWrk(opts: {
  url: string
  token?: string
  connections: number
  threads?: number
  seconds: number
}): Promise<WrkResult> {
  const args = [
    `-t${opts.threads ?? 1}`,
    `-c${opts.connections}`,
    `-d${opts.seconds}s`,
    '--latency',
    '--timeout',
    '10s',
  ]
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`)
  args.push('-H', 'Accept: application/json', opts.url)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrk failed: ${stderr || err.message}`))
      else resolve(parseWrk(stdout))
    })
  })
}
