// Where the Gatehouse instances of a test run keep their audit records, so that the end-of-run
// join check (join-invariant.ts) can read them: each instance is registered in the run directory
// when it starts, and its records are exported there when it stops (a test may drop its
// PostgreSQL schema or its data directory afterwards). An instance whose records were never
// exported is read from its store at the end of the run, if the store is still there.
import { randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { GatewayConfig } from '../../src/config/index.ts'
import type { AuditRecord } from '../../src/audit/record.ts'
import type { AuditRepository } from '../../src/audit/repository.ts'
import { storesFromConfig } from '../../src/stores.ts'

/** What the join check needs of one Gatehouse record. */
export interface JoinRecord {
  id: string
  decision: string | undefined
  principal: AuditRecord['principal']
  error: string | undefined
  /** Held requests: the approval step this record is (used: forwarded with an approval). */
  approval: string | undefined
  /** The identity, for failure messages. */
  identity: string | undefined
  request: string
}

interface Registration {
  id: string
  /** The test file that started it (process.argv[1] of the test process). */
  startedBy: string
  /** The parts of the configuration that locate the store. */
  audit: GatewayConfig['audit']
  dataDir: string
  /** Gatehouse's own account at the API server, when the harness knows it. */
  accounts: string[]
}

const dirOf = (runDir: string): string => join(runDir, 'gatehouse-instances')

/** The username in a ServiceAccount token (a JWT whose `sub` names the account). */
export function accountOfToken(token: string): string | undefined {
  const payload = token.trim().split('.')[1]
  if (!payload) return undefined
  try {
    const sub = (
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }
    ).sub
    return typeof sub === 'string' ? sub : undefined
  } catch {
    return undefined
  }
}

/** Registers a Gatehouse instance of this run; returns its registration id. */
export function registerGatehouse(
  runDir: string,
  config: Pick<GatewayConfig, 'audit' | 'dataDir'>,
  accounts: string[] = [],
): string {
  const id = randomUUID()
  mkdirSync(dirOf(runDir), { recursive: true })
  const entry: Registration = {
    id,
    startedBy: process.argv[1] ?? 'unknown',
    audit: config.audit,
    dataDir: config.dataDir,
    accounts,
  }
  writeFileSync(join(dirOf(runDir), `${id}.json`), JSON.stringify(entry))
  return id
}

function toJoinRecord(r: AuditRecord): JoinRecord {
  return {
    id: r.id,
    decision: r.decision?.action,
    principal: r.principal,
    error: r.error?.code,
    approval: r.approval?.event,
    identity: r.identity?.name,
    request: `${r.request?.method ?? '?'} ${r.request?.target ?? '?'}`,
  }
}

/** Every record of a store, oldest pages last (the query API pages newest first, 10,000 at most). */
async function allRecords(store: AuditRepository): Promise<JoinRecord[]> {
  const out = new Map<string, JoinRecord>()
  let untilMs: number | undefined
  for (;;) {
    const page = await store.query({ limit: 10_000, ...(untilMs ? { untilMs } : {}) })
    let added = 0
    for (const r of page)
      if (!out.has(r.id)) {
        out.set(r.id, toJoinRecord(r))
        added++
      }
    if (page.length < 10_000 || added === 0) break
    // the next page ends at the oldest time seen (inclusive of its millisecond: ids dedupe)
    untilMs = Date.parse(page[page.length - 1]!.time) + 1
  }
  return [...out.values()]
}

/** Writes the instance's records into the run directory (call after it stopped, before cleanup). */
export async function exportGatehouseRecords(runDir: string, id: string): Promise<void> {
  const entry = JSON.parse(readFileSync(join(dirOf(runDir), `${id}.json`), 'utf8')) as Registration
  const store = storesFromConfig(entry.audit, entry.dataDir, { readonly: true })
  try {
    const records = await allRecords(store.audit)
    writeFileSync(
      join(dirOf(runDir), `${id}.records.jsonl`),
      records.map((r) => JSON.stringify(r)).join('\n') + '\n',
    )
  } finally {
    await store.close()
  }
}

/** Every registered instance's records, and what could not be read. */
export async function collectGatehouseRecords(runDir: string): Promise<{
  records: JoinRecord[]
  accounts: Set<string>
  instances: number
  problems: string[]
}> {
  const records: JoinRecord[] = []
  const accounts = new Set<string>()
  const problems: string[] = []
  let names: string[] = []
  try {
    names = readdirSync(dirOf(runDir)).filter((n) => /^[0-9a-f-]+\.json$/.test(n))
  } catch {
    /* no Gatehouse ran */
  }
  for (const name of names) {
    const entry = JSON.parse(readFileSync(join(dirOf(runDir), name), 'utf8')) as Registration
    for (const a of entry.accounts) accounts.add(a)
    const exported = join(dirOf(runDir), `${entry.id}.records.jsonl`)
    try {
      const text = readFileSync(exported, 'utf8')
      for (const line of text.split('\n')) if (line) records.push(JSON.parse(line) as JoinRecord)
      continue
    } catch {
      /* not exported: read the store itself */
    }
    try {
      const store = storesFromConfig(entry.audit, entry.dataDir, { readonly: true })
      try {
        records.push(...(await allRecords(store.audit)))
      } finally {
        await store.close()
      }
    } catch (e) {
      problems.push(
        `the records of a Gatehouse started by ${basename(entry.startedBy)} (data dir ${entry.dataDir}) could not be read: ${String(e)}`,
      )
    }
  }
  return { records, accounts, instances: names.length, problems }
}
