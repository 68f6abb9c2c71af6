// One character must not stop the gateway (issue 18 item 7): U+0000 in a token claim, in a
// name from the path and in a request body, through Gatehouse and the real API server, into
// PostgreSQL and SQLite. Each record is stored exactly, the gateway keeps serving, and with
// PostgreSQL cut at shutdown such records are spooled and written at the next start without
// blocking it.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import pg from 'pg'
import { Agent, request } from 'undici'
import type { AuditRecord, AuditRepository } from '../../../src/audit/index.ts'
import { parseConfig } from '../../../src/config/index.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { startServer, type RunningServer } from '../../../src/server.ts'
import {
  accountOfToken,
  exportGatehouseRecords,
  registerGatehouse,
} from '../../harness/gatehouse-records.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { authenticationConfig, useGatewayEnv, type GatewayEnv } from './env.ts'
import { pgRelay, PG_URL } from './pg-relay.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)

/** Every rule at audit level request, so bodies are kept in records. */
function requestLevelPolicy(dir: string): string {
  const file = join(dir, `audit-request-${RUN}.yaml`)
  writeFileSync(
    file,
    [
      'apiVersion: gatehouse.dev/v1alpha1',
      'kind: Policy',
      'metadata: { name: e2e-audit-request }',
      'spec:',
      "  subjects: [{ name: '*' }]",
      '  audit: request',
      '  rules:',
      "    - { name: everything, action: allow, verbs: ['*'], mask: { enabled: false } }",
    ].join('\n'),
  )
  return file
}

interface Sent {
  status: number
  id: string
}

/** Where requests go: a Gatehouse's URL and the CA of its serving certificate. */
interface Target {
  url: string
  ca: string | Buffer
}

const targetOf = (gh: RunningGatehouse): Target => ({ url: gh.url, ca: readFileSync(gh.caFile) })

async function send(
  target: Target,
  token: string,
  method: string,
  path: string,
  body?: { type: string; data: Buffer | string },
): Promise<Sent> {
  const dispatcher = new Agent({ connect: { ca: target.ca } })
  try {
    const res = await request(`${target.url}${path}`, {
      dispatcher,
      method: method as 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body ? { 'content-type': body.type } : {}),
      },
      ...(body ? { body: body.data } : {}),
    })
    await res.body.text()
    return { status: res.statusCode, id: String(res.headers['audit-id']) }
  } finally {
    await dispatcher.close()
  }
}

/** The three carriers of U+0000: a recorded claim, a name in the path, a body. */
async function hostileRequests(e: GatewayEnv, gh: Target, tag: string) {
  const claimToken = await e.issuer.mintGitHubActions({ workflow_ref: `evil\u0000${tag}` })
  const nameToken = await e.issuer.mintGitHubActions({ repository: `octo-org/app\u0000${tag}` })
  const token = await e.issuer.mintGitHubActions()
  const cm = `nul-${RUN}-${tag}`
  return {
    claim: await send(gh, claimToken, 'GET', '/api/v1/namespaces/default/configmaps?limit=1'),
    mappedName: await send(gh, nameToken, 'GET', '/api/v1/namespaces/default/configmaps?limit=1'),
    pathName: await send(gh, token, 'GET', `/api/v1/namespaces/default/configmaps/a%00${tag}`),
    body: await send(gh, token, 'POST', '/api/v1/namespaces/default/configmaps', {
      type: 'application/yaml',
      data: Buffer.from(
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${cm}\ndata:\n  k: "x\u0000${tag}"\n`,
      ),
    }),
    jsonBody: await send(gh, token, 'POST', '/api/v1/namespaces/default/configmaps', {
      type: 'application/json',
      data: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${cm}-json` },
        data: { k: `y\u0000${tag}` },
      }),
    }),
  }
}

async function checkStored(
  store: AuditRepository,
  sent: Awaited<ReturnType<typeof hostileRequests>>,
  tag: string,
): Promise<void> {
  const get = async (s: Sent): Promise<AuditRecord> => {
    const r = await store.get(s.id)
    assert.ok(r, `record ${s.id} stored`)
    assert.equal(r.storage, undefined, 'stored as it is, not quarantined')
    return r
  }
  assert.equal(sent.claim.status, 200)
  assert.equal((await get(sent.claim)).identity?.claims['workflow_ref'], `evil\u0000${tag}`)
  // A name with U+0000 cannot be impersonated (no HTTP header can carry it): refused, recorded.
  assert.equal(sent.mappedName.status, 401)
  assert.equal((await get(sent.mappedName)).error?.code, 'GW_AUTHN_INVALID_TOKEN')
  // A name with U+0000 is no Kubernetes name: refused, with what was asked in the record.
  const path = await get(sent.pathName)
  assert.ok(sent.pathName.status >= 400)
  assert.match(path.request?.target ?? '', new RegExp(`/configmaps/a%00${tag}$`))
  const yaml = await get(sent.body)
  assert.match((yaml.requestBody as { data: string }).data, new RegExp(`x\u0000${tag}`))
  const json = await get(sent.jsonBody)
  assert.equal(sent.jsonBody.status, 201, 'the API server takes U+0000 in a value')
  assert.equal(
    (JSON.parse((json.requestBody as { data: string }).data) as { data: { k: string } }).data.k,
    `y\u0000${tag}`,
  )
}

describe('U+0000 in claims, names and bodies', () => {
  test('SQLite: stored exactly and the gateway keeps serving', async () => {
    const e = env()
    const gh = await startGatehouse(e.cluster, {
      authentication: authenticationConfig(e.cluster, e.issuer),
      upstreamTokenFile: e.upstreamTokenFile,
      policies: [requestLevelPolicy(e.dir)],
    })
    try {
      const sent = await hostileRequests(e, targetOf(gh), 'sqlite')
      const after = await send(targetOf(gh), await e.issuer.mintGitHubActions(), 'GET', '/api')
      assert.equal(after.status, 200)
      assert.equal(await gh.server.audit.flush(), true)
      await checkStored(gh.server.audit.store, sent, 'sqlite')
      assert.ok(await gh.server.audit.store.get(after.id))
      assert.equal(gh.server.audit.stats().storeHealthy, true)
    } finally {
      await gh.stop()
    }
  })

  describe('PostgreSQL', () => {
    const schema = `gh_e2e_nul_${process.pid}`
    after(async () => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await c.end()
    })

    test('stored exactly, the gateway keeps serving, and a spool of them replays at restart', async () => {
      const e = env()
      const relay = await pgRelay()
      const dataDir = tempDir('gatehouse-nul-pg-')
      const account = accountOfToken(readFileSync(e.upstreamTokenFile, 'utf8'))
      // startServer itself (not startGatehouse): the test must stop Gatehouse while the store is
      // cut (so it spools) and export its records for the join check once the store is back.
      const start = async (): Promise<{ server: RunningServer; id: string; target: Target }> => {
        const config = parseConfig(
          {
            apiVersion: 'gatehouse.dev/v1alpha1',
            kind: 'GatewayConfig',
            dataDir,
            listen: { address: '127.0.0.1', port: 0 },
            authentication: authenticationConfig(e.cluster, e.issuer),
            clusters: [
              {
                name: 'harness',
                default: true,
                server: e.cluster.server,
                caFile: e.cluster.caFile,
                credential: { tokenFile: e.upstreamTokenFile },
              },
            ],
            policies: { paths: [requestLevelPolicy(e.dir)], watchIntervalMs: 0 },
            limits: { shutdownGraceMs: 1000 },
            audit: { store: { postgres: { url: relay.url, schema } }, flushIntervalMs: 20 },
          },
          'audit-hostile gatehouse.yaml',
        )
        const id = registerGatehouse(e.cluster.runDir, config, account ? [account] : [])
        const server = await startServer(config, { logger: silentLogger() })
        return { server, id, target: { url: server.listener.url, ca: server.listener.caCertPem! } }
      }
      let gh: Awaited<ReturnType<typeof start>> | undefined = await start()
      try {
        const live = await hostileRequests(e, gh.target, 'pg')
        const next = await send(gh.target, await e.issuer.mintGitHubActions(), 'GET', '/api')
        assert.equal(next.status, 200, 'still serving after the hostile records')
        assert.equal(await gh.server.audit.flush(), true, 'the queue drains')
        await checkStored(gh.server.audit.store, live, 'pg')
        assert.equal(gh.server.audit.stats().storeHealthy, true)

        // The store goes away; hostile records are answered from the buffer, then spooled.
        relay.cut()
        const spooled = await hostileRequests(e, gh.target, 'spool')
        const first = gh
        gh = undefined
        await first.server.close()
        assert.ok(
          readdirSync(join(dataDir, 'audit-spool')).some((f) => f.endsWith('.jsonl')),
          'the records were spooled at shutdown',
        )
        relay.restore()
        await exportGatehouseRecords(e.cluster.runDir, first.id)
        gh = await start()
        const served = await send(gh.target, await e.issuer.mintGitHubActions(), 'GET', '/api')
        assert.equal(served.status, 200, 'the restart serves: the spool does not block it')
        assert.equal(await gh.server.audit.flush(), true)
        await checkStored(gh.server.audit.store, spooled, 'spool')
        assert.ok(await gh.server.audit.store.get(served.id))
        assert.deepEqual(
          readdirSync(join(dataDir, 'audit-spool')).filter((f) => f.endsWith('.jsonl')),
          [],
          'the spool is consumed',
        )
      } finally {
        relay.restore()
        if (gh) {
          await gh.server.close()
          await exportGatehouseRecords(e.cluster.runDir, gh.id)
        }
        await relay.close()
      }
    })
  })
})
