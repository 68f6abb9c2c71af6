// Refusals are cheap to keep (issue 18 item 12): over HTTP/2, 20,000 unauthenticated requests
// with the same 8 KB :path must grow the audit store (SQLite file and its WAL) by less than
// 10 MiB. (With HPACK a client may repeat an indexed path for a few bytes where the header
// table allows it; Node's client sends it whole here. What the store keeps is the same.) Records of the first
// refusals keep a bounded target (head and SHA-256 of the rest); the rest are counted into
// summary records; past the per-source limit the source gets 429 with Retry-After.
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { connect, type ClientHttp2Session } from 'node:http2'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { AuditRecord } from '../../../src/audit/index.ts'
import { useGatewayEnv } from './env.ts'

const env = useGatewayEnv()
const REQUESTS = 20_000
const CONCURRENCY = 100

function storeBytes(dataDir: string): number {
  let n = 0
  for (const f of ['audit.db', 'audit.db-wal']) {
    try {
      n += statSync(join(dataDir, f)).size
    } catch {
      // no WAL yet
    }
  }
  return n
}

function get(
  session: ClientHttp2Session,
  path: string,
): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'GET', ':path': path, accept: 'application/json' })
    let status = 0
    let retryAfter: string | undefined
    s.on('response', (h) => {
      status = Number(h[':status'])
      if (typeof h['retry-after'] === 'string') retryAfter = h['retry-after']
    })
    s.on('data', () => undefined)
    s.on('end', () => resolve({ status, ...(retryAfter ? { retryAfter } : {}) }))
    s.on('error', reject)
    s.end()
  })
}

describe('a flood of unauthenticated requests', () => {
  test('20,000 HTTP/2 requests with an 8 KB indexed path grow the store by less than 10 MiB', async () => {
    const e = env()
    const gh = e.gatehouse
    await gh.server.audit.flush()
    const before = storeBytes(gh.dataDir)
    const countBefore = await gh.server.audit.store.count()
    const path = `/api/v1/namespaces/default/configmaps?labelSelector=${'x'.repeat(8192)}`
    const t0 = Date.now()
    const session = connect(gh.url, { ca: readFileSync(gh.caFile) })
    const statuses = new Map<number, number>()
    let retryAfter: string | undefined
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < REQUESTS) {
        next++
        const r = await get(session, path)
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
        if (r.status === 429) retryAfter ??= r.retryAfter
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    session.close()
    const windows =
      Math.ceil((Date.now() - t0) / (gh.config.audit.refusals.windowSeconds * 1000)) + 1
    // Every refusal is either recorded or counted into a summary, written when its window ends.
    const windowMs = gh.config.audit.refusals.windowSeconds * 1000
    await new Promise((r) => setTimeout(r, windowMs + 500))
    assert.equal(await gh.server.audit.flush(), true)
    const grown = storeBytes(gh.dataDir) - before
    console.log(
      `flood: ${REQUESTS} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, store grew ${(grown / 1024).toFixed(0)} KiB, ${(await gh.server.audit.store.count()) - countBefore} records`,
    )
    assert.ok(grown < 10 * 1024 * 1024, `the store grew ${grown} bytes`)
    // Refused before authentication (400: the selector is no selector) or by it (401), then 429.
    assert.equal(
      (statuses.get(400) ?? 0) + (statuses.get(401) ?? 0) + (statuses.get(429) ?? 0),
      REQUESTS,
    )
    assert.ok(
      (statuses.get(429) ?? 0) > 0,
      'the source is limited past audit.refusals.limitPerSource',
    )
    assert.match(retryAfter ?? '', /^\d+$/)

    const records = await gh.server.audit.store.query({
      limit: 10_000,
      sinceMs: Date.now() - 600_000,
    })
    const flood = records.filter((r: AuditRecord) =>
      r.request?.target.startsWith('/api/v1/namespaces/default/configmaps?labelSelector=xxx'),
    )
    assert.ok(flood.length > 0)
    assert.ok(
      flood.length <= gh.config.audit.refusals.recordsPerSource * windows,
      `${flood.length} refusals recorded one by one in ${windows} window(s)`,
    )
    for (const r of flood) {
      assert.ok(r.request!.target.length <= gh.config.audit.refusals.maxFieldChars)
      assert.match(r.request!.target, /…sha256:[0-9a-f]{64}$/)
      // 400 (no selector) or 401 before the source is limited; a flood that spans more than one
      // refusal window (a slow machine) also has its first 429s of a new window recorded one by
      // one within that window's budget (counted above), like any other refusal.
      assert.ok([400, 401, 429].includes(r.response.code), `recorded code ${r.response.code}`)
    }
    const summaries = records.filter(
      (r) => r.refusalSummary && r.refusalSummary.source === '127.0.0.1',
    )
    const counted = summaries.reduce((n, r) => n + r.refusalSummary!.refusals, 0)
    assert.equal(flood.length + counted, REQUESTS, 'every refusal is recorded or counted')
  })
})
