// kill -9 under load (issue 18 item 4): Gatehouse, as its own process, serves about 300
// requests a second (creates and reads) for 20 s and is killed with SIGKILL several times,
// each time started again on the same data directory. Every request the cluster answered
// must have a Gatehouse record, and every request the API server saw from Gatehouse (its own
// audit log) must join one: the journal put each forwarded request's record on disk before
// forwarding, and the next start recovered those whose final record the kill lost (marked
// `recovered`, outcome unknown).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { sqliteStores } from '../../../src/stores.ts'
import { adminClient, ensureNamespace, readAuditEvents } from '../../harness/index.ts'
import { authenticationConfig, GATEHOUSE_ACCOUNT, useGatewayEnv } from './env.ts'
import { gatehouseProcess, type GatehouseProcess } from './gatehouse-process.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)
const NS = `gh-crash-${RUN}`
const RATE = 300
/** Five phases of 4 s at RATE, a kill -9 (with requests in flight) and a start between them. */
const PHASES = 5
const PHASE_MS = 4000
/** Requests in flight at most (a loaded machine queues the rest here, not inside Gatehouse). */
const MAX_INFLIGHT = 100

describe('kill -9 under load', () => {
  let proc: GatehouseProcess | undefined
  // A failed assertion must not leave the process behind.
  after(() => proc?.kill9())
  test('leaves no answered or forwarded request without a Gatehouse record', async () => {
    const e = env()
    const admin = adminClient(e.cluster)
    await ensureNamespace(admin, NS)
    await admin.ensure(`/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'read-me' },
      data: { k: 'v' },
    })
    const gh = gatehouseProcess(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
    })
    proc = gh
    await gh.start()
    const token = await e.issuer.mintGitHubActions({ expiresInSeconds: 3600 })
    let agent = new Agent({ connect: { ca: readFileSync(gh.caFile) }, connections: 64 })
    /** Requests the cluster answered (Gatehouse forwarded them). */
    const answered = new Map<string, number>()
    /** Requests Gatehouse refused itself (never forwarded; docs/audit.md's contract item 5). */
    const refusals = new Map<string, number>()
    let failed = 0
    let sent = 0
    const inflight = new Set<Promise<void>>()

    const one = async (i: number): Promise<void> => {
      const write = i % 3 === 0
      const path = write
        ? `/api/v1/namespaces/${NS}/configmaps`
        : `/api/v1/namespaces/${NS}/configmaps/read-me`
      try {
        const res = await request(`${gh.url}${path}`, {
          dispatcher: agent,
          method: write ? 'POST' : 'GET',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          ...(write
            ? {
                body: JSON.stringify({
                  apiVersion: 'v1',
                  kind: 'ConfigMap',
                  metadata: { name: `c-${RUN}-${i}`, labels: { run: RUN } },
                  data: { i: String(i) },
                }),
              }
            : {}),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        })
        const text = await res.body.text()
        const id = res.headers['audit-id']
        if (typeof id !== 'string') failed++
        // Gatehouse's own refusals name its request id; everything else came from the cluster.
        else if (/gatehouse request id/.test(text)) refusals.set(id, res.statusCode)
        else answered.set(id, res.statusCode)
      } catch {
        failed++ // the kill cut it: never answered
      }
    }

    let loadMs = 0
    for (let phase = 0; phase < PHASES; phase++) {
      const t0 = Date.now()
      for (let i = 0; Date.now() - t0 < PHASE_MS; i++) {
        const due = t0 + (i * 1000) / RATE
        if (due > Date.now()) await sleep(due - Date.now())
        while (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight)
        const p = one(sent++).finally(() => inflight.delete(p))
        inflight.add(p)
      }
      loadMs += Date.now() - t0
      if (phase === PHASES - 1) break
      await gh.kill9() // requests are in flight, final records queued in memory
      await Promise.all(inflight)
      await agent.destroy()
      await gh.start()
      agent = new Agent({ connect: { ca: readFileSync(gh.caFile) }, connections: 64 })
    }
    await Promise.all(inflight)
    const elapsed = loadMs / 1000
    await gh.stop()
    await agent.destroy()

    const stores = sqliteStores(join(gh.dataDir, 'audit.db'), { readonly: true })
    const store = stores.audit
    try {
      const missing: string[] = []
      let recovered = 0
      for (const id of answered.keys()) {
        const r = await store.get(id)
        if (!r) missing.push(id)
        else if (r.recovered) recovered++
      }
      let refusalsLost = 0
      for (const id of refusals.keys()) if (!(await store.get(id))) refusalsLost++
      console.log(
        `kill -9 run: ${sent} sent in ${elapsed.toFixed(1)} s of load (${(sent / elapsed).toFixed(0)}/s), ${answered.size} answered by the cluster, ${refusals.size} refused by Gatehouse (${refusalsLost} of their records lost), ${failed} cut, ${PHASES - 1} kills, ${recovered} answered requests recovered from the journal`,
      )
      // Not vacuous: most of the load was served (the zero-missing checks below are the point).
      assert.ok(answered.size > sent / 2, `most requests answered (${answered.size} of ${sent})`)
      assert.deepEqual(missing, [], 'every request the cluster answered has a Gatehouse record')

      // The API server's side: every request Gatehouse forwarded (its account impersonating a
      // caller, in this run's namespace) joins a Gatehouse record of an allowed decision.
      await sleep(2000) // the API server's log backend writes after the response
      const events = readAuditEvents(e.cluster.auditLogPath).filter(
        (ev) =>
          ev.user.username === GATEHOUSE_ACCOUNT &&
          ev.impersonatedUser &&
          ev.requestURI.includes(`/namespaces/${NS}/`),
      )
      assert.ok(events.length > 0)
      const unjoined: string[] = []
      for (const ev of new Set(events.map((x) => x.auditID))) {
        const r = await store.get(ev)
        if (!r || r.decision?.action !== 'allow') unjoined.push(ev)
      }
      assert.deepEqual(unjoined, [], 'every forwarded request joins an allowed Gatehouse record')
      const journal = (await store.query({ limit: 10_000, namespace: NS })).filter(
        (r) => r.recovered,
      )
      assert.ok(
        journal.length > 0,
        'the kills hit requests whose final record was not yet stored (the test exercises recovery)',
      )
      for (const r of journal) {
        assert.equal(r.response.code, 0)
        assert.equal(r.decision?.action, 'allow')
      }
    } finally {
      await stores.close()
    }
  })
})
