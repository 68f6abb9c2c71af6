// The cost of conditions that read the stored object: the same merge patch through Gatehouse
// where no rule reads `object` (forwarded as is) and where one does (a dryRun=All pre-flight
// and a get, in parallel, then the write pinned to the judged resourceVersion), sequentially,
// against the API server directly as the floor. And the strict body decoder, in-process.
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import { decodeBody } from '../src/kube/body.ts'

/** The namespace where the bench policy's deny rule reads `object` (writeBenchPolicies). */
export const CONDITION_NAMESPACE = 'bench-cond'

export interface WriteLatency {
  name: string
  meanMs: number
  p50Ms: number
  p99Ms: number
  errors: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

/** `count` sequential merge patches of one ConfigMap; latency per request. */
export async function measurePatches(opts: {
  name: string
  url: string
  token: string
  ca: string
  count: number
}): Promise<WriteLatency> {
  const agent = new Agent({ connect: { ca: opts.ca }, allowH2: false })
  const times: number[] = []
  let errors = 0
  try {
    for (let i = 0; i < opts.count + 20; i++) {
      const t0 = performance.now()
      const res = await request(opts.url, {
        method: 'PATCH',
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${opts.token}`,
          'content-type': 'application/merge-patch+json',
          accept: 'application/json',
        },
        body: JSON.stringify({ data: { n: String(i) } }),
      })
      await res.body.text()
      if (res.statusCode !== 200) errors++
      if (i >= 20) times.push(performance.now() - t0) // the first 20 warm up
    }
  } finally {
    await agent.close()
  }
  times.sort((a, b) => a - b)
  return {
    name: opts.name,
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    errors,
  }
}

export interface DecodeCost {
  body: string
  bytes: number
  ms: number
  mbPerSec: number
}

/** The strict decoder on typical and large bodies, in-process. */
export function measureBodyDecode(): DecodeCost[] {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web', team: 'octo' } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'web', image: 'example.invalid/web:1.2.3', env: [{ name: 'A', value: 'b' }] },
          ],
        },
      },
    },
  }
  const bigConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'big' },
    data: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`key-${i}`, 'x'.repeat(400)])),
  }
  const yamlDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, team: octo}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: example.invalid/web:1.2.3
`
  const cases: [string, Buffer, string][] = [
    ['Deployment (JSON)', Buffer.from(JSON.stringify(deployment)), 'application/json'],
    ['Deployment (YAML)', Buffer.from(yamlDeployment), 'application/yaml'],
    ['ConfigMap 800 KB (JSON)', Buffer.from(JSON.stringify(bigConfigMap)), 'application/json'],
  ]
  return cases.map(([body, bytes, type]) => {
    const runs = bytes.length > 100_000 ? 20 : 2000
    for (let i = 0; i < Math.min(runs, 50); i++) decodeBody(bytes, type)
    const t0 = performance.now()
    for (let i = 0; i < runs; i++) decodeBody(bytes, type)
    const ms = (performance.now() - t0) / runs
    return { body, bytes: bytes.length, ms, mbPerSec: bytes.length / 1e6 / (ms / 1000) }
  })
}
