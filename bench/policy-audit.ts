// Policy and audit costs, measured in-process on the same machine as the data-path runs:
// - the decision cost per request with 1,000 rules loaded (the generated set below, the same the
//   data-path Gatehouse runs with), over a mix of requests that hit, miss and read conditions;
// - audit write throughput through the AuditWriter (batches, as in production) into SQLite and
//   PostgreSQL.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import pg from 'pg'
import type { Identity } from '../src/authn/index.ts'
import { AuditJournal, AuditWriter, type AuditRecord } from '../src/audit/index.ts'
import { postgresStores, sqliteStores, type Stores } from '../src/stores.ts'
import { parseRequestInfo, type RequestInfo } from '../src/kube/request-info.ts'
import { loadPolicies, PolicySet } from '../src/policy/index.ts'

const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']
const RESOURCES = [
  'pods',
  'deployments',
  'configmaps',
  'secrets',
  'services',
  'jobs',
  'ingresses',
  'leases',
]

/**
 * 100 policies × 10 rules for 100 teams (subjects by claim), one in five rules with a CEL
 * condition, plus the bench's own allow policy (an allow, and a deny that reads the stored object
 * in one namespace): 1,002 rules in all.
 */
export function writeBenchPolicies(dir: string): string {
  mkdirSync(dir, { recursive: true })
  for (let p = 0; p < 100; p++) {
    const rules = Array.from({ length: 10 }, (_, r) => {
      const i = p * 10 + r
      return {
        name: `rule-${r}`,
        action: r % 7 === 6 ? 'deny' : 'allow',
        verbs: [VERBS[i % VERBS.length], VERBS[(i + 3) % VERBS.length]],
        apiGroups: ['', 'apps', 'batch', 'networking.k8s.io', 'coordination.k8s.io'],
        resources: [RESOURCES[i % RESOURCES.length]],
        namespaces: [`team-${p}-*`, `shared-${r}`],
        ...(r % 5 === 4
          ? {
              when: `request.userAgent.startsWith("kubectl") && identity.claims.ref == "refs/heads/main"`,
            }
          : {}),
      }
    })
    writeFileSync(
      join(dir, `team-${p}.yaml`),
      stringify({
        apiVersion: 'gatehouse.dev/v1alpha1',
        kind: 'Policy',
        metadata: { name: `team-${p}` },
        spec: { subjects: [{ claims: { repository: `org/team-${p}-*` } }], rules },
      }),
    )
  }
  writeFileSync(
    join(dir, 'bench-allow.yaml'),
    stringify({
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'Policy',
      metadata: { name: 'bench-allow' },
      spec: {
        subjects: [{ claims: { repository: 'octo-org/*' } }],
        rules: [
          { name: 'everything', action: 'allow', verbs: ['*'] },
          // writes in bench-cond are decided on the stored object (bench/writes.ts)
          {
            name: 'no-forbidden-key',
            action: 'deny',
            verbs: ['update'],
            resources: ['configmaps'],
            namespaces: ['bench-cond'],
            when: `has(object.data) && "forbidden" in object.data`,
          },
        ],
      },
    }),
  )
  return dir
}

export interface DecisionCost {
  rules: number
  compileMs: number
  meanMicros: number
  p99Micros: number
  decisionsPerSec: number
}

export function measureDecisionCost(dir: string, decisions = 200_000): DecisionCost {
  const t0 = performance.now()
  const set = new PolicySet(loadPolicies([dir]))
  const compileMs = performance.now() - t0
  const rules = set.ruleCount
  const requests: { info: RequestInfo; identity: Identity }[] = []
  for (let i = 0; i < 512; i++) {
    const team = i % 120 // some match no team policy
    const ns = i % 3 ? `team-${team}-web` : `shared-${i % 10}`
    const resource = RESOURCES[i % RESOURCES.length]!
    const group =
      resource === 'deployments' ? 'apis/apps/v1' : resource === 'jobs' ? 'apis/batch/v1' : 'api/v1'
    const method = ['GET', 'GET', 'POST', 'PATCH', 'DELETE'][i % 5]!
    const path = `/${group}/namespaces/${ns}/${resource}${method === 'POST' ? '' : `/obj-${i}`}`
    const parsed = parseRequestInfo(method, path)
    if (!parsed.ok) throw new Error(`bench request ${path}: ${parsed.reason}`)
    requests.push({
      info: parsed.info,
      identity: {
        name: `github:org/team-${team}-app`,
        groups: ['github:org'],
        method: 'oidc',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: `repo:org/team-${team}-app:ref:refs/heads/main`,
        claims: {
          repository: `org/team-${team}-app`,
          ref: i % 2 ? 'refs/heads/main' : 'refs/heads/dev',
        },
        extra: {},
      },
    })
  }
  const evaluate = (i: number): void => {
    const r = requests[i % requests.length]!
    set.evaluate({
      cluster: 'prod',
      info: r.info,
      identity: r.identity,
      userAgent: 'kubectl/v1.32.0',
    })
  }
  for (let i = 0; i < 20_000; i++) evaluate(i) // warm up (JIT, subject caches)
  // Timed in blocks of 100 decisions: per-decision timer calls would dominate what they measure.
  const blocks: number[] = []
  const start = performance.now()
  for (let b = 0; b < decisions / 100; b++) {
    const t = performance.now()
    for (let i = 0; i < 100; i++) evaluate(b * 100 + i)
    blocks.push(((performance.now() - t) * 1000) / 100)
  }
  const totalMs = performance.now() - start
  blocks.sort((a, b) => a - b)
  return {
    rules,
    compileMs,
    meanMicros: (totalMs * 1000) / decisions,
    p99Micros: blocks[Math.floor(blocks.length * 0.99)]!,
    decisionsPerSec: decisions / (totalMs / 1000),
  }
}

function benchRecord(i: number): AuditRecord {
  return {
    id: `bench-${i}-${Math.random().toString(36).slice(2, 10)}`,
    time: new Date(Date.now() - 1000 + (i % 1000)).toISOString(),
    durationMs: 2.5,
    cluster: 'prod',
    identity: {
      name: 'github:octo-org/app',
      groups: ['github:octo-org'],
      method: 'oidc',
      issuer: 'https://token.actions.githubusercontent.com',
      subject: 'repo:octo-org/app:ref:refs/heads/main',
      claims: {
        repository: 'octo-org/app',
        ref: 'refs/heads/main',
        run_id: String(1000 + (i % 50)),
      },
    },
    source: {
      address: '10.0.0.7',
      userAgent: 'kubectl/v1.32.0 (linux/amd64)',
      kubectlCommand: 'kubectl get',
    },
    request: {
      method: 'GET',
      target: `/api/v1/namespaces/team-${i % 20}/pods?limit=500`,
      isResourceRequest: true,
      verb: 'list',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: `team-${i % 20}`,
      name: '',
    },
    decision: {
      action: 'allow',
      policy: 'ci-deployer',
      rule: 'deploy-in-staging',
      auditLevel: 'metadata',
    },
    principal: { user: 'ci:octo-org-app', groups: ['ci:deployers'], via: 'impersonation' },
    response: { code: 200, requestBytes: 0, responseBytes: 4321 },
  }
}

export interface WriteThroughput {
  store: string
  records: number
  recordsPerSec: number
}

async function throughput(name: string, stores: Stores, records: number): Promise<WriteThroughput> {
  await stores.migrate()
  const store = stores.audit
  const writer = new AuditWriter(store, {
    maxBufferedRecords: records + 1,
    batchSize: 500,
    flushIntervalMs: 100,
    onStoreFailure: 'refuseRequests',
  })
  const prepared = Array.from({ length: records }, (_, i) => benchRecord(i))
  const t0 = performance.now()
  for (const r of prepared) writer.write(r)
  if (!(await writer.flush(120_000))) throw new Error(`${name}: the writer did not drain`)
  const seconds = (performance.now() - t0) / 1000
  const stored = await store.count()
  if (stored !== records) throw new Error(`${name}: ${stored} records stored, ${records} written`)
  await writer.close(1000)
  await stores.close()
  return { store: name, records, recordsPerSec: records / seconds }
}

export async function measureAuditThroughput(
  dir: string,
  pgUrl: string,
  records = 100_000,
): Promise<WriteThroughput[]> {
  const sqlite = await throughput('sqlite', sqliteStores(join(dir, 'bench-audit.db')), records)
  const schema = `gh_bench_${process.pid}`
  try {
    const postgres = await throughput(
      'postgres',
      postgresStores({ connectionString: pgUrl, schema }),
      records,
    )
    return [sqlite, postgres]
  } finally {
    const c = new pg.Client({ connectionString: pgUrl })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await c.end()
  }
}

export interface JournalCost {
  appends: number
  concurrency: number
  appendsPerSec: number
  /** Process CPU (all threads: the event loop and libuv's pool) per append. */
  cpuMicrosPerAppend: number
  p50Ms: number
  p99Ms: number
}

/**
 * The journal alone, in-process: `concurrency` requests at a time each append a record (and
 * wait for it to be synced), as the journal stage does; CPU time is robust to a shared machine
 * where wall-clock comparisons of two Gatehouse processes drift.
 */
export async function measureJournalCost(
  dir: string,
  appends = 20_000,
  concurrency = 32,
): Promise<JournalCost> {
  const journal = AuditJournal.open({
    dir: join(dir, 'bench-journal'),
    fsync: true,
    maxSegmentBytes: 16 * 1024 * 1024,
  })
  const prepared = Array.from({ length: appends }, (_, i) => benchRecord(i))
  const latencies: number[] = []
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < appends) {
        const r = prepared[next++]!
        const start = performance.now()
        await journal.append(r)
        latencies.push(performance.now() - start)
        journal.settle([r.id])
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await journal.close()
  latencies.sort((a, b) => a - b)
  return {
    appends,
    concurrency,
    appendsPerSec: appends / seconds,
    cpuMicrosPerAppend: (cpu.user + cpu.system) / appends,
    p50Ms: latencies[Math.floor(appends * 0.5)]!,
    p99Ms: latencies[Math.floor(appends * 0.99)]!,
  }
}
