// Credentials the cluster would refuse are refused by Gatehouse too (issue 18 items 10, 11):
// a deleted ServiceAccount's token stops working through Gatehouse within the documented
// bound (revocationCheck.cacheTtlSeconds, 5 s, after the API server refuses it), and an issuer
// whose discovery redirects to another host is never trusted. Neither request reaches the API
// server (its own audit log), and both refusals have Gatehouse records.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { adminClient, readAuditEvents } from '../../harness/index.ts'
import { KubeClient } from '../../harness/kube-client.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { createCa, issueCert } from '../../harness/pki.ts'
import { AUDIENCE, SA_NAMESPACE, useGatewayEnv } from './env.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)
/** docs/authentication.md: revocationCheck.cacheTtlSeconds, default 5. */
const REVOCATION_BOUND_MS = 5000

const through = (url: string, ca: string, token: string): KubeClient =>
  new KubeClient({ server: url, ca: readFileSync(ca), token })

describe('revoked and untrustworthy credentials', () => {
  test("a deleted ServiceAccount's token is refused within the documented bound", async () => {
    const e = env()
    const name = `revoked-${RUN}`
    const token = await e.serviceAccountToken(name)
    const marker = `revocation-${RUN}`
    const path = `/api/v1/namespaces/${SA_NAMESPACE}/configmaps?labelSelector=m%3D${marker}`
    const gatehouse = through(e.gatehouse.url, e.gatehouse.caFile, token)
    assert.equal((await gatehouse.raw('GET', path)).statusCode, 200)

    const admin = adminClient(e.cluster)
    await admin.json('DELETE', `/api/v1/namespaces/${SA_NAMESPACE}/serviceaccounts/${name}`)
    // The cluster's own view first (kube-apiserver caches a token's success for 10 s itself):
    // poll its TokenReview, with the token's audience, until it refuses the token.
    const deadline = Date.now() + 30_000
    for (;;) {
      const review = await admin.json<{ status: { authenticated?: boolean } }>(
        'POST',
        '/apis/authentication.k8s.io/v1/tokenreviews',
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [AUDIENCE] },
        },
      )
      if (!review.status.authenticated) break
      assert.ok(Date.now() < deadline, 'the API server refuses the deleted account within 30 s')
      await sleep(200)
    }
    await sleep(REVOCATION_BOUND_MS)
    const refused = await gatehouse.raw('GET', `${path}&after=deletion`)
    assert.equal(refused.statusCode, 401, refused.body)
    assert.equal((JSON.parse(refused.body) as { kind: string }).kind, 'Status')

    await sleep(1000)
    const forwarded = readAuditEvents(e.cluster.auditLogPath).filter((ev) =>
      ev.requestURI.includes('after=deletion'),
    )
    assert.deepEqual(forwarded, [], 'the refused request never reached the API server')
    const id = (JSON.parse(refused.body) as { message: string }).message.match(
      /gatehouse request id ([0-9a-f-]+)/,
    )?.[1]
    assert.ok(id, refused.body)
    await e.gatehouse.server.audit.flush()
    const record = await e.gatehouse.server.audit.store.get(id)
    assert.equal(record?.error?.code, 'GW_AUTHN_INVALID_TOKEN')
    await gatehouse.close()
  })

  describe('an issuer whose discovery redirects to another host', () => {
    let hostile: Server | undefined
    let gh: RunningGatehouse | undefined
    after(async () => {
      await gh?.stop()
      hostile?.closeAllConnections()
      await new Promise((r) => (hostile ? hostile.close(r) : r(undefined)))
    })

    test('is never trusted: its tokens are refused and nothing is forwarded', async () => {
      const e = env()
      const dir = tempDir('gh-redirect-')
      const ca = createCa(dir, 'redirect-ca')
      const leaf = issueCert(ca, 'redirect')
      let discoveryRequests = 0
      hostile = createServer(
        { cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) },
        (_req, res) => {
          discoveryRequests++
          // The real issuer's discovery, on another origin: it would name keys the attacker
          // chose had Gatehouse followed it.
          res.writeHead(302, { location: `${e.issuer.url}/.well-known/openid-configuration` })
          res.end()
        },
      )
      await new Promise<void>((r) => hostile!.listen(0, '127.0.0.1', r))
      const hostileUrl = `https://127.0.0.1:${(hostile.address() as AddressInfo).port}`
      gh = await startGatehouse(e.cluster, {
        authentication: {
          authenticators: [
            {
              oidc: {
                issuer: hostileUrl,
                caFile: ca.certFile,
                audiences: [AUDIENCE],
                preset: 'github-actions',
              },
            },
          ],
        },
        upstreamTokenFile: e.upstreamTokenFile,
      })
      const token = await e.issuer.mintGitHubActions({ iss: hostileUrl })
      const client = through(gh.url, gh.caFile, token)
      const res = await client.raw('GET', `/api/v1/namespaces/default/configmaps?r=redirect-${RUN}`)
      assert.equal(res.statusCode, 503, res.body)
      const status = JSON.parse(res.body) as { kind: string; reason: string }
      assert.equal(status.kind, 'Status')
      assert.equal(discoveryRequests, 1)
      await sleep(1000)
      assert.deepEqual(
        readAuditEvents(e.cluster.auditLogPath).filter((ev) =>
          ev.requestURI.includes(`redirect-${RUN}`),
        ),
        [],
      )
      await gh.server.audit.flush()
      const [record] = await gh.server.audit.store.query({ limit: 1 })
      assert.equal(record?.error?.code, 'GW_AUTHN_UNAVAILABLE')
      assert.match(
        gh.server.logger ? readFileSync(join(gh.dataDir, 'gatehouse.log'), 'utf8') : '',
        /redirects to https:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration: redirects are followed only within/,
      )
      await client.close()
    })
  })
})
