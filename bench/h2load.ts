// HTTP/2 throughput with h2load (Debian's nghttp2-client): several streams multiplexed per
// connection, as client-go does. Parsed from its summary.
import { execFile } from 'node:child_process'

export interface H2Result {
  requestsPerSec: number
  meanMs: number
  failed: number
  protocol: string
}

export function parseH2load(out: string): H2Result {
  const toMs = (v: string, unit: string): number =>
    unit === 'us' ? Number(v) / 1000 : unit === 's' ? Number(v) * 1000 : Number(v)
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out)
  return {
    requestsPerSec: Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 'NaN'),
    meanMs: mean ? toMs(mean[1]!, mean[2]!) : Number.NaN,
    failed:
      Number(/requests: .*?(\d+) failed/.exec(out)?.[1] ?? 0) +
      Number(
        /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/
          .exec(out)
          ?.slice(2)
          .reduce((a, b) => a + Number(b), 0) ?? 0,
      ),
    protocol: /Application protocol: (\S+)/.exec(out)?.[1] ?? '?',
  }
}

export function runH2load(opts: {
  url: string
  token?: string
  clients: number
  streams: number
  seconds: number
  http1?: boolean
}): Promise<H2Result> {
  const args = [
    ...(opts.http1 ? ['--h1'] : []),
    '-c',
    String(opts.clients),
    '-m',
    String(opts.streams),
    '-D',
    String(opts.seconds),
    '-H',
    'accept: application/json',
  ]
  if (opts.token) args.push('-H', `authorization: Bearer ${opts.token}`)
  args.push(opts.url)
  return new Promise((resolve, reject) => {
    execFile('h2load', args, { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`h2load failed: ${stderr || err.message}`))
      else resolve(parseH2load(stdout))
    })
  })
}
