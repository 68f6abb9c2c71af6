// Latency at a fixed request rate (autocannon), and watch fan-out delivery latency.
import autocannon from 'autocannon'
import { Agent, request } from 'undici'

export interface FixedRateResult {
  rate: number
  p50Ms: number
  p99Ms: number
  errors: number
  non2xx: number
}

export async function fixedRate(opts: {
  url: string
  token?: string
  rate: number
  seconds: number
  connections: number
}): Promise<FixedRateResult> {
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    overallRate: opts.rate,
    duration: opts.seconds,
    headers: {
      accept: 'application/json',
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    },
  })
  return {
    rate: opts.rate,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/**
 * Opens `watchers` watches on one namespace's ConfigMaps, creates `events` ConfigMaps directly
 * at the API server, and measures, per watcher and event, the time from the create's response
 * to the event's arrival.
 */
export async function watchFanOut(opts: {
  watchUrl: string
  watchToken: string | undefined
  ca: string
  create: (name: string) => Promise<void>
  watchers: number
  events: number
}): Promise<{ p50Ms: number; p99Ms: number; delivered: number; expected: number }> {
  const agent = new Agent({ connect: { ca: opts.ca }, connections: opts.watchers + 4 })
  const sentAt = new Map<string, number>()
  const delays: number[] = []
  const abort = new AbortController()
  let delivered = 0
  const watchers = await Promise.all(
    Array.from({ length: opts.watchers }, async () => {
      const res = await request(opts.watchUrl, {
        dispatcher: agent,
        signal: abort.signal,
        headers: {
          accept: 'application/json',
          ...(opts.watchToken ? { authorization: `Bearer ${opts.watchToken}` } : {}),
        },
        bodyTimeout: 0,
      })
      if (res.statusCode !== 200)
        throw new Error(`watch answered ${res.statusCode}: ${await res.body.text()}`)
      let buf = ''
      res.body.setEncoding('utf8')
      res.body.on('data', (d: string) => {
        buf += d
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          const name = /"name":"(bench-ev-\d+)"/.exec(line)?.[1]
          const t0 = name ? sentAt.get(name) : undefined
          if (t0 !== undefined) {
            delays.push(performance.now() - t0)
            delivered++
          }
        }
      })
      res.body.on('error', () => undefined)
      return res
    }),
  )
  await new Promise((r) => setTimeout(r, 500))
  for (let i = 0; i < opts.events; i++) {
    // Timed from before the create: the event can reach a watcher before the create's response.
    const name = `bench-ev-${i}`
    sentAt.set(name, performance.now())
    await opts.create(name)
  }
  const deadline = Date.now() + 10_000
  while (delivered < opts.watchers * opts.events && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50))
  abort.abort()
  for (const w of watchers) w.body.destroy()
  await agent.close().catch(() => undefined)
  delays.sort((a, b) => a - b)
  return {
    p50Ms: percentile(delays, 50),
    p99Ms: percentile(delays, 99),
    delivered,
    expected: opts.watchers * opts.events,
  }
}

/**
 * Small-GET latency at a fixed rate while `watches` watches are open (each on its own
 * connection): long-lived requests must not make short ones wait (issue 18: a fixed pool of
 * 256 upstream connections once queued everything behind 256 watches).
 */
export async function latencyUnderWatches(opts: {
  url: string
  watchUrl: string
  token?: string
  ca: string
  watches: number
  rate: number
  seconds: number
}): Promise<FixedRateResult & { watchesOpen: number }> {
  const agent = new Agent({ connect: { ca: opts.ca }, connections: opts.watches + 4 })
  const abort = new AbortController()
  const headers = {
    accept: 'application/json',
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
  }
  let open = 0
  const bodies: { destroy(): void }[] = []
  for (let i = 0; i < opts.watches; i += 100) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(100, opts.watches - i) }, () =>
        request(opts.watchUrl, {
          dispatcher: agent,
          signal: abort.signal,
          headers,
          bodyTimeout: 0,
        }),
      ),
    )
    for (const r of batch)
      if (r.status === 'fulfilled') {
        if (r.value.statusCode === 200) open++
        r.value.body.on('error', () => undefined)
        r.value.body.resume()
        bodies.push(r.value.body)
      }
  }
  const fixed = await fixedRate({
    url: opts.url,
    ...(opts.token ? { token: opts.token } : {}),
    rate: opts.rate,
    seconds: opts.seconds,
    connections: 8,
  })
  abort.abort()
  for (const b of bodies) b.destroy()
  await agent.close().catch(() => undefined)
  return { ...fixed, watchesOpen: open }
}
