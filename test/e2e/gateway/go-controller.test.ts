// A real client-go controller (k8s.io/client-go v0.37, built from the Go module proxy) through
// Gatehouse: shared informers on the ConfigMaps and Secrets of one namespace with the
// WatchListClient feature on (a streaming list where the server serves one, list + watch
// where it does not). It syncs, sees updates, and when Gatehouse restarts under it (SIGTERM,
// and kill -9) it reconnects to the new process and resyncs: every change made while Gatehouse
// was down, and after, reaches its cache. With masking on it never sees a Secret value, in the
// initial list, in watch events or after the resync; with masking off (a backup identity) it
// sees them all.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { adminClient, ensureNamespace, writeKubeconfig } from '../../harness/index.ts'
import { goClient } from '../../harness/go-clients.ts'
import { startController, type RunningController } from '../../harness/go-controller.ts'
import { freePort } from '../../harness/ports.ts'
import { authenticationConfig, useGatewayEnv } from './env.ts'
import { gatehouseProcess, type GatehouseProcess } from './gatehouse-process.ts'
import { BACKUP, policies } from './masking-policies.ts'

const RUN = Math.random().toString(36).slice(2, 6)
const CARD = '4111111111111111'
const MASKED_SECRET = '[MASKED:secret]'

describe('a client-go controller (informers, WatchList) through Gatehouse', () => {
  const env = useGatewayEnv()
  let gh: GatehouseProcess
  let serverMinor = 0
  const controllers: RunningController[] = []

  before(
    async () => {
      await goClient('controller') // built here when the cache lacks it
      const e = env()
      const version = await adminClient(e.cluster).json<{ minor: string }>('GET', '/version')
      serverMinor = parseInt(version.minor, 10)
      gh = gatehouseProcess(e.cluster, {
        authentication: authenticationConfig(e.cluster, e.issuer),
        upstreamTokenFile: e.upstreamTokenFile,
        policies: policies(e.dir),
        // the same address after a restart, as behind a Service
        overrides: { listen: { address: '127.0.0.1', port: await freePort() } },
      })
      await gh.start()
    },
    { timeout: 60 * 60_000 },
  )
  after(async () => {
    for (const c of controllers) await c.stop()
    await gh?.stop()
  })

  async function scenario(opts: { masked: boolean; restart: 'SIGTERM' | 'SIGKILL' }) {
    const e = env()
    const admin = adminClient(e.cluster)
    const ns = `gw-goctl-${RUN}-${opts.masked ? 'masked' : 'plain'}`
    await ensureNamespace(admin, ns)
    const cms = `/api/v1/namespaces/${ns}/configmaps`
    const secrets = `/api/v1/namespaces/${ns}/secrets`
    const secret = (v: string) => Buffer.from(v).toString('base64')
    const patch = (path: string, body: unknown) =>
      admin.json('PATCH', path, body, 'application/merge-patch+json')
    await admin.json('POST', cms, {
      metadata: { name: 'app' },
      data: { color: 'blue', card: CARD },
    })
    await admin.json('POST', cms, { metadata: { name: 'doomed' }, data: { x: '1' } })
    await admin.json('POST', secrets, {
      metadata: { name: 'db' },
      data: { password: secret(`hunter2-${RUN}`) },
    })

    const token = opts.masked
      ? await e.issuer.mintGitHubActions({ expiresInSeconds: 3600 })
      : await e.serviceAccountToken(BACKUP)
    const kubeconfig = writeKubeconfig(join(e.dir, `${ns}.kubeconfig`), {
      server: gh.url,
      caFile: gh.caFile,
      token,
    })
    const c = await startController({ kubeconfig, namespace: ns, dir: e.dir, name: `ctl-${ns}` })
    controllers.push(c)
    const seen = (kind: string, name: string, key: string, value: string) => () =>
      c.view().get(`${kind}/${name}`)?.[key] === value
    const password = (v: string) => (opts.masked ? MASKED_SECRET : v)
    const inCluster = async () => {
      const names = async (path: string, kind: string) =>
        (await admin.json<{ items: { metadata: { name: string } }[] }>('GET', path)).items.map(
          (i) => `${kind}/${i.metadata.name}`,
        )
      return [...(await names(cms, 'ConfigMap')), ...(await names(secrets, 'Secret'))].sort()
    }

    // initial sync
    await c.until('the initial sync', (ls) => ls.some((l) => l.event === 'synced'))
    const initial = c.lines.filter((l) => l.event === 'add')
    assert.deepEqual(initial.map((l) => `${l.kind}/${l.name}`).sort(), await inCluster())
    assert.ok(
      initial.every((l) => l.initial),
      'every add of the sync is part of the initial list',
    )
    assert.equal(c.view().get('Secret/db')?.['password'], password(`hunter2-${RUN}`))
    const card = c.view().get('ConfigMap/app')?.['card']
    if (opts.masked) assert.notEqual(card, CARD, 'the card number in the ConfigMap is masked')
    else assert.equal(card, CARD)
    assert.equal(c.view().get('ConfigMap/app')?.['color'], 'blue')

    // what it asked for: a streaming list where the server serves one
    const requests = c.lines.filter((l) => l.event === 'request').map((l) => l.detail ?? '')
    const streamed = requests.filter((r) => r.includes('sendInitialEvents=true'))
    const listed = requests.filter((r) => r.startsWith('GET ') && !r.includes('watch=true'))
    if (serverMinor >= 35) {
      assert.equal(streamed.length, 2, `one streaming list per informer:\n${requests.join('\n')}`)
      assert.deepEqual(listed, [], 'no plain LIST')
    } else {
      assert.ok(listed.length >= 2, `list + watch on 1.${serverMinor}:\n${requests.join('\n')}`)
    }

    // updates
    await patch(`${cms}/app`, { data: { color: 'green' } })
    await patch(`${secrets}/db`, { data: { password: secret(`rotated-${RUN}`) } })
    await c.until('the green update', seen('ConfigMap', 'app', 'color', 'green'))
    await c.until('the rotated password', () =>
      c.lines.some((l) => l.event === 'update' && l.kind === 'Secret'),
    )
    assert.equal(c.view().get('Secret/db')?.['password'], password(`rotated-${RUN}`))

    // Gatehouse restarts under it; the cluster changes meanwhile
    const before = c.lines.length
    if (opts.restart === 'SIGTERM') await gh.stop()
    else await gh.kill9()
    await patch(`${cms}/app`, { data: { color: 'red' } })
    await patch(`${secrets}/db`, { data: { password: secret(`while-down-${RUN}`) } })
    await admin.json('POST', cms, { metadata: { name: 'late' }, data: { n: '1' } })
    await admin.json('DELETE', `${cms}/doomed`)
    await sleep(3000) // long enough for the controller to notice and retry against nothing
    await gh.start()
    await c.until('the resync after the restart', () => {
      const v = c.view()
      return (
        v.get('ConfigMap/app')?.['color'] === 'red' &&
        v.has('ConfigMap/late') &&
        !v.has('ConfigMap/doomed')
      )
    })
    await c.until('the password changed while Gatehouse was down', () =>
      c.lines
        .slice(before)
        .some((l) => l.event === 'update' && l.kind === 'Secret' && l.name === 'db'),
    )
    assert.equal(c.view().get('Secret/db')?.['password'], password(`while-down-${RUN}`))
    const after = c.lines.slice(before)
    assert.ok(
      after.some((l) => l.event === 'request' && / -> 200$/.test(l.detail ?? '')),
      'it reconnected through the restarted Gatehouse',
    )

    // and keeps watching through the new process
    await patch(`${cms}/app`, { data: { color: 'purple' } })
    await c.until('an update after the restart', seen('ConfigMap', 'app', 'color', 'purple'))
    assert.deepEqual(
      [...c.view().keys()].sort(),
      await inCluster(),
      'the cache holds exactly what the cluster holds',
    )

    const everything = JSON.stringify(c.lines)
    for (const v of [`hunter2-${RUN}`, `rotated-${RUN}`, `while-down-${RUN}`, CARD])
      assert.equal(everything.includes(v), !opts.masked, `${v} in what the controller saw`)
  }

  test('masking on: sync, updates and a graceful Gatehouse restart; no Secret value reaches it', async () => {
    await scenario({ masked: true, restart: 'SIGTERM' })
  })

  test('masking off (backup identity): sync, updates and a kill -9 of Gatehouse; it sees every value', async () => {
    await scenario({ masked: false, restart: 'SIGKILL' })
  })
})
