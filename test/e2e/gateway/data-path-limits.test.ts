// The data path under load and abuse (issue 18): thousands of watches over HTTP/1.1 and HTTP/2
// never starve short requests and free every upstream connection when they close; clients that
// reset, stall or never read cancel their upstream work and still get records; bodies that never
// arrive get 408; per-identity bounds give 429; the listener answers every malformed or
// refused request with a Status and a record. Real kube-apiserver, real TLS, in-process Gatehouse.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request as h1request, type RequestOptions } from 'node:https'
import { connect as h2connect, constants as h2, type ClientHttp2Session } from 'node:http2'
import { connect as tlsConnect } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { adminClient, ensureNamespace, readAuditEvents } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import type { AuditRecord } from '../../../src/audit/index.ts'
import { authenticationConfig, CI_REPOSITORY, useGatewayEnv } from './env.ts'

const NS = `gw-limits-${Math.random().toString(36).slice(2, 7)}`
/** Everything allowed, with masking on (its default): the filtered path is the one under test. */
function maskedPolicy(_issuer: unknown, dir: string): string[] {
  const file = join(dir, 'limits-masked.yaml')
  writeFileSync(
    file,
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: { name: e2e-limits-masked }
spec:
  subjects: [{ name: '*' }]
  rules: [{ name: everything, action: allow, verbs: ['*'] }]
`,
  )
  return [file]
}

const env = useGatewayEnv({
  policies: maskedPolicy,
  overrides: {
    limits: {
      requestBodyIdleMs: 1000,
      concurrency: { perIdentityStreams: 5000, perIdentityRequests: 1000, streams: 10_000 },
    },
  },
})
let token: string
let other: string

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

function h1(
  gw: RunningGatehouse,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; auth?: string } = {},
): Promise<Reply> {
  const url = new URL(gw.url)
  return new Promise((resolve, reject) => {
    const req = h1request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: opts.method ?? 'GET',
        agent: false,
        ca: readFileSync(gw.caFile),
        headers: {
          accept: 'application/json',
          authorization: `Bearer ${opts.auth ?? token}`,
          ...opts.headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** A raw TLS connection to Gatehouse: writes `bytes`, resolves with everything read until close. */
function raw(
  gw: RunningGatehouse,
  bytes: string,
  opts: { halfClose?: boolean } = {},
): Promise<string> {
  const url = new URL(gw.url)
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      {
        host: url.hostname,
        port: Number(url.port),
        ca: readFileSync(gw.caFile),
        ALPNProtocols: ['http/1.1'],
        // not in the types, honoured by tls.connect: keep reading after our own end()
        ...({ allowHalfOpen: true } as object),
      },
      () => {
        s.write(bytes)
        if (opts.halfClose) s.end()
      },
    )
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => (got += d))
    s.on('end', () => s.destroy())
    s.on('close', () => resolve(got))
    s.on('error', reject)
    setTimeout(() => s.destroy(), 15_000).unref()
  })
}

function statusOf(text: string): { code: number; reason: string; message: string } {
  const body = text.slice(text.indexOf('{'))
  return JSON.parse(body) as { code: number; reason: string; message: string }
}

function h2session(
  gw: RunningGatehouse,
  settings: Record<string, number> = {},
): ClientHttp2Session {
  const s = h2connect(gw.url, { ca: readFileSync(gw.caFile), settings })
  s.on('error', () => undefined)
  return s
}

/** A watch over its own HTTP/1.1 connection: resolves `event` with the first event line. */
function h1watch(gw: RunningGatehouse, path: string): { event: Promise<string>; close(): void } {
  const url = new URL(gw.url)
  let req: ReturnType<typeof h1request> | undefined
  const event = new Promise<string>((resolve, reject) => {
    const opts: RequestOptions = {
      host: url.hostname,
      port: url.port,
      path,
      agent: false,
      ca: readFileSync(gw.caFile),
      headers: { accept: 'application/json', authorization: `Bearer ${token}` },
    }
    req = h1request(opts, (res) => {
      if (res.statusCode !== 200) reject(new Error(`watch answered ${res.statusCode}`))
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buf += d
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')))
      })
      res.on('error', () => undefined)
    })
    req.on('error', (e) => reject(e))
    req.end()
  })
  event.catch(() => undefined)
  return { event, close: () => req?.destroy() }
}

function h2watch(
  session: ClientHttp2Session,
  path: string,
): { event: Promise<string>; close(): void } {
  const stream = session.request({
    ':path': path,
    accept: 'application/json',
    authorization: `Bearer ${token}`,
  })
  stream.on('error', () => undefined)
  const event = new Promise<string>((resolve, reject) => {
    stream.on('response', (h) => {
      if (h[':status'] !== 200) reject(new Error(`watch answered ${h[':status']}`))
    })
    let buf = ''
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => {
      buf += d
      if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')))
    })
  })
  event.catch(() => undefined)
  return { event, close: () => stream.close(h2.NGHTTP2_CANCEL) }
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** Gatehouse's records, once the writer flushed them. */
async function records(
  gw: RunningGatehouse,
  match: (r: AuditRecord) => boolean,
): Promise<AuditRecord[]> {
  await gw.server.audit.flush()
  const all = await gw.server.audit.store.query({ limit: 10_000 })
  return all.filter(match)
}

function upstream(
  gw: RunningGatehouse,
): ReturnType<
  NonNullable<ReturnType<RunningGatehouse['server']['gateway']['clusters']['get']>>['poolStats']
> {
  return gw.server.gateway.clusters.get('harness')!.poolStats()
}

async function resourceVersion(path: string): Promise<string> {
  const list = await adminClient(env().cluster).json<{ metadata: { resourceVersion: string } }>(
    'GET',
    path,
  )
  return list.metadata.resourceVersion
}

describe('data path under load and abuse', () => {
  before(async () => {
    const admin = adminClient(env().cluster)
    await ensureNamespace(admin, NS)
    token = await env().issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
      expiresInSeconds: 3600,
    })
    other = await env().serviceAccountToken('limits-bystander')
  })

  for (const protocol of ['HTTP/1.1', 'HTTP/2'] as const) {
    test(`2,000 watches over ${protocol} all get their event, short GETs keep answering, closing frees every upstream connection`, async (t) => {
      const gw = env().gatehouse
      const before = upstream(gw).streams.connected
      const base = `/api/v1/namespaces/${NS}/configmaps`
      const rv = await resourceVersion(base)
      const path = `${base}?watch=1&resourceVersion=${rv}`
      const sessions =
        protocol === 'HTTP/2' ? [h2session(gw), h2session(gw), h2session(gw), h2session(gw)] : []
      const watches: ReturnType<typeof h1watch>[] = []
      const closeAll = (): void => {
        for (const w of watches) w.close()
        for (const s of sessions) s.close()
      }
      t.after(closeAll)
      for (let i = 0; i < 2000; i++) {
        watches.push(protocol === 'HTTP/2' ? h2watch(sessions[i % 4]!, path) : h1watch(gw, path))
        // in batches: 2,000 TLS handshakes at once would only measure the machine
        if (i % 100 === 99)
          await waitFor(
            'this batch of watches to reach the API server',
            () => upstream(gw).streams.running >= before + i + 1,
            120_000,
          )
      }
      // short requests do not queue behind the watches
      for (let i = 0; i < 20; i++) {
        const r = await h1(gw, `${base}?limit=1`)
        assert.equal(r.status, 200, r.text)
      }
      const name = `fanout-${protocol === 'HTTP/2' ? 'h2' : 'h1'}`
      await adminClient(env().cluster).json('POST', base, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name },
      })
      const events = await Promise.all(watches.map((w) => w.event))
      assert.equal(events.length, 2000)
      for (const e of events) assert.match(e, new RegExp(`"type":"ADDED".*"name":"${name}"`))
      closeAll()
      await waitFor(
        'the upstream stream connections to close',
        () => upstream(gw).streams.connected <= before,
        60_000,
      )
      assert.equal(upstream(gw).streams.running, 0)
    })
  }

  test('300 never-read HTTP/2 streams do not make another caller wait, are cut at the send timeout and recorded', async () => {
    const gw = await startGatehouse(env().cluster, {
      authentication: authenticationConfig(env().cluster, env().issuer),
      upstreamTokenFile: env().upstreamTokenFile,
      overrides: { limits: { sendTimeoutMs: 3000, concurrency: { perIdentityRequests: 500 } } },
    })
    after(() => gw.stop())
    // a response larger than any flow-control window: /openapi/v2 is allowed to everyone
    const session = h2session(gw, { initialWindowSize: 1024 })
    const streams = []
    for (let i = 0; i < 300; i++) {
      const s = session.request({
        ':path': `/openapi/v2?never-read=${i}`,
        authorization: `Bearer ${token}`,
      })
      s.on('error', () => undefined)
      s.pause()
      streams.push(s)
    }
    await waitFor('the streams to start', () => upstream(gw).requests.running >= 200, 60_000)
    const bystander = await h1(gw, `/api/v1/namespaces/${NS}/configmaps?limit=1`, { auth: other })
    assert.equal(bystander.status, 200, bystander.text)
    // the send timeout (3 s here) cuts them: their upstream requests end, records say incomplete
    await waitFor(
      'the stalled streams to be cut',
      () => upstream(gw).requests.running === 0,
      60_000,
    )
    const cut = await records(gw, (r) => r.request?.target.includes('never-read=') === true)
    assert.equal(cut.length, 300)
    for (const r of cut) {
      assert.equal(r.response.code, 200)
      assert.equal(r.response.complete, false)
    }
    session.destroy()
  })

  test('100 HTTP/2 streams that read a masked 7 MB list but its end and reset: all recorded incomplete, memory released', async () => {
    const gw = env().gatehouse
    const base = `/api/v1/namespaces/${NS}/configmaps`
    const admin = adminClient(env().cluster)
    const value = 'x'.repeat(100_000) + ' card 4111 1111 1111 1111'
    for (let i = 0; i < 70; i++)
      await admin.ensure(base, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `big-${i}`, labels: { big: 'yes' } },
        data: { v: value },
      })
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    // several collections with a turn of the event loop between: what weak callbacks and
    // finalizers (HTTP/2 stream handles, undici) release takes a second pass; one gc() alone
    // counted up to 80 MiB of such garbage after the 2,000-watch test as "grown"
    const measure = async (): Promise<number> => {
      for (let i = 0; i < 4; i++) {
        gc()
        await new Promise((resolve) => setImmediate(resolve))
      }
      const m = process.memoryUsage()
      return m.heapUsed + m.arrayBuffers
    }
    const listPath = `${base}?labelSelector=big%3Dyes`
    const whole = await h1(gw, listPath)
    assert.equal(whole.status, 200)
    const size = Buffer.byteLength(whole.text)
    assert.ok(size > 7_000_000, `the masked list is ${size} bytes`)
    assert.doesNotMatch(whole.text, /4111 1111 1111 1111/)
    const baseline = await measure()
    // the client's flow-control window bounds what can be in flight: stopping 200 KB before the
    // end leaves Gatehouse with unsent bytes for sure
    const session = h2session(gw, { initialWindowSize: 65_535 })
    const runs = Array.from({ length: 100 }, (_, i) => {
      const s = session.request({
        ':path': `${listPath}&reset-run=${i}`,
        accept: 'application/json',
        authorization: `Bearer ${token}`,
      })
      s.on('error', () => undefined)
      return new Promise<number>((resolve) => {
        let total = 0
        s.on('data', (d: Buffer) => {
          total += d.length
          if (total >= size - 200_000) {
            s.close(h2.NGHTTP2_CANCEL)
            resolve(total)
          }
        })
        s.on('close', () => resolve(total))
      })
    })
    const got = await Promise.all(runs)
    for (const n of got) assert.ok(n >= size - 200_000 && n < size, `read ${n} of ${size} bytes`)
    session.destroy()
    await waitFor('the upstream requests to end', () => upstream(gw).requests.running === 0)
    const resetRuns = (r: AuditRecord): boolean => r.request?.target.includes('reset-run=') === true
    await waitFor('every reset request to have its record', async () => {
      return (await records(gw, resetRuns)).length >= 100
    })
    const recs = await records(gw, resetRuns)
    assert.equal(recs.length, 100)
    for (const r of recs) {
      assert.equal(r.response.complete, false, JSON.stringify(r.response))
      assert.ok((r.response.sentBytes ?? 0) > 0)
    }
    await sleep(500)
    const grown = (await measure()) - baseline
    assert.ok(grown < 64 * 1024 * 1024, `memory grew by ${Math.round(grown / 1048576)} MiB`)
  })

  test('10,000 HTTP/2 HEADERS+RST_STREAM pairs forward close to nothing upstream', async () => {
    const gw = env().gatehouse
    const marker = `rapid-reset-${Math.random().toString(36).slice(2, 8)}`
    const path = `/api/v1/namespaces/${NS}/configmaps/${marker}`
    let sent = 0
    while (sent < 10_000) {
      const session = h2session(gw)
      await new Promise<void>((resolve) => {
        session.once('connect', () => resolve())
        session.once('close', () => resolve())
      })
      for (let i = 0; i < 500 && sent < 10_000 && !session.closed && !session.destroyed; i++) {
        const s = session.request({ ':path': path, authorization: `Bearer ${token}` })
        s.on('error', () => undefined)
        s.close(h2.NGHTTP2_CANCEL)
        sent++
      }
      await sleep(20)
      session.destroy()
    }
    await sleep(2000)
    const reached = readAuditEvents(env().cluster.auditLogPath).filter((e) =>
      e.requestURI.includes(marker),
    )
    assert.ok(
      reached.length <= 100,
      `${reached.length} of 10,000 reset streams reached the API server`,
    )
  })

  test('a declared body that never arrives gets 408 and a record; the connection is closed', async () => {
    const gw = env().gatehouse
    const url = new URL(gw.url)
    const text = await raw(
      gw,
      [
        `POST /api/v1/namespaces/${NS}/configmaps HTTP/1.1`,
        `Host: ${url.host}`,
        `Authorization: Bearer ${token}`,
        'Content-Type: application/json',
        'Content-Length: 1000',
        '',
        '{"apiVersion"',
      ].join('\r\n'),
    )
    assert.match(text, /^HTTP\/1\.1 408 /)
    const status = statusOf(text)
    assert.equal(status.code, 408)
    assert.match(status.message, /sent nothing for 1000 ms/)
    const id = /gatehouse request id ([\w-]+)/.exec(status.message)![1]!
    const rec = await records(gw, (r) => r.id === id)
    assert.equal(rec[0]?.error?.code, 'GW_REQUEST_TIMEOUT')
  })

  test('per-identity stream bound: 429 with Retry-After and a record; another identity is unaffected; readyz reports saturation', async () => {
    const gw = await startGatehouse(env().cluster, {
      authentication: authenticationConfig(env().cluster, env().issuer),
      upstreamTokenFile: env().upstreamTokenFile,
      overrides: { limits: { concurrency: { perIdentityStreams: 2, streams: 3 } } },
    })
    try {
      const path = `/api/v1/namespaces/${NS}/configmaps?watch=1`
      const w1 = h1watch(gw, path)
      const w2 = h1watch(gw, path)
      await waitFor('two watches', () => upstream(gw).streams.running >= 2)
      const refused = await h1(gw, path)
      assert.equal(refused.status, 429)
      assert.equal(refused.headers['retry-after'], '1')
      const status = statusOf(refused.text)
      assert.equal(status.reason, 'TooManyRequests')
      assert.match(status.message, /perIdentityStreams/)
      // a short request of the same identity, and a stream of another identity, still pass
      assert.equal((await h1(gw, `/api/v1/namespaces/${NS}/configmaps?limit=1`)).status, 200)
      const url = new URL(gw.url)
      const w3 = await new Promise<number>((resolve, reject) => {
        const req = h1request(
          {
            host: url.hostname,
            port: url.port,
            path,
            agent: false,
            ca: readFileSync(gw.caFile),
            headers: { authorization: `Bearer ${other}` },
          },
          (res) => resolve(res.statusCode ?? 0),
        )
        req.on('error', reject)
        req.end()
      })
      assert.equal(w3, 200)
      const ready = await h1(gw, '/gatehouse/readyz')
      assert.equal(ready.status, 503)
      assert.match(ready.text, /saturated: at the bound of concurrent streams/)
      const id = /gatehouse request id ([\w-]+)/.exec(status.message)![1]!
      assert.equal((await records(gw, (r) => r.id === id))[0]?.error?.code, 'GW_CONCURRENCY_LIMIT')
      w1.close()
      w2.close()
    } finally {
      await gw.stop()
    }
  })

  test('headers: 24 KiB pass on HTTP/1.1 and HTTP/2 (limit 32 KiB); 40 KiB are a 431 Status with a record on both', async () => {
    const gw = env().gatehouse
    const path = `/api/v1/namespaces/${NS}/configmaps?limit=1`
    const ok = await h1(gw, path, { headers: { 'x-padding': 'p'.repeat(24 * 1024) } })
    assert.equal(ok.status, 200, ok.text)
    const h1big = await raw(
      gw,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Padding: ${'p'.repeat(40 * 1024)}\r\n\r\n`,
    )
    assert.match(h1big, /^HTTP\/1\.1 431 /)
    const s1 = statusOf(h1big)
    assert.equal(s1.code, 431)
    const session = h2session(gw)
    const h2reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const s = session.request({
        ':path': path,
        authorization: `Bearer ${token}`,
        'x-padding': 'p'.repeat(24 * 1024),
      })
      let text = ''
      let status = 0
      s.on('response', (h) => (status = Number(h[':status'])))
      s.setEncoding('utf8')
      s.on('data', (d: string) => (text += d))
      s.on('end', () => resolve({ status, text }))
      s.on('error', reject)
    })
    assert.equal(h2reply.status, 200, h2reply.text)
    session.close()
    const id = /gatehouse request id ([\w-]+)/.exec(s1.message)![1]!
    const rec = await records(gw, (r) => r.id === id)
    assert.equal(rec[0]?.error?.code, 'GW_REQUEST_HEADERS_TOO_LARGE')
  })

  test('a malformed request line, Expect: 200-ok and HTTP/2 CONNECT: a Status and a record each', async () => {
    const gw = env().gatehouse
    const bad = await raw(gw, 'GET /api v1 HTTP/1.1 extra\r\nHost: x\r\n\r\n')
    assert.match(bad, /^HTTP\/1\.1 400 /)
    const s400 = statusOf(bad)
    assert.equal(s400.reason, 'BadRequest')
    const badId = /gatehouse request id ([\w-]+)/.exec(s400.message)![1]!
    assert.equal((await records(gw, (r) => r.id === badId))[0]?.error?.code, 'GW_REQUEST_INVALID')

    const expect = await h1(gw, `/api/v1/namespaces/${NS}/configmaps?limit=1`, {
      headers: { expect: '200-ok' },
    })
    assert.equal(expect.status, 417)
    assert.equal(statusOf(expect.text).reason, 'ExpectationFailed')

    const session = h2session(gw)
    const connect = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const s = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' })
      let text = ''
      let status = 0
      s.on('response', (h) => (status = Number(h[':status'])))
      s.setEncoding('utf8')
      s.on('data', (d: string) => (text += d))
      s.on('end', () => resolve({ status, text }))
      s.on('close', () => resolve({ status, text }))
      s.on('error', reject)
    })
    session.close()
    assert.equal(connect.status, 405)
    assert.equal(statusOf(connect.text).reason, 'MethodNotAllowed')
  })

  test('a request followed by a half-close still gets its answer', async () => {
    const gw = env().gatehouse
    const text = await raw(
      gw,
      `GET /api/v1/namespaces/${NS}/configmaps?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nAccept: application/json\r\n\r\n`,
      { halfClose: true },
    )
    assert.match(text, /^HTTP\/1\.1 200 /)
    assert.match(text, /"kind":"ConfigMapList"/)
  })

  test('while draining, a new request gets 503 and a record', async () => {
    const gw = await startGatehouse(env().cluster, {
      authentication: authenticationConfig(env().cluster, env().issuer),
      upstreamTokenFile: env().upstreamTokenFile,
      overrides: { limits: { shutdownGraceMs: 3000 } },
    })
    const watch = h1watch(gw, `/api/v1/namespaces/${NS}/configmaps?watch=1`)
    await waitFor('the watch', () => upstream(gw).streams.running >= 1)
    // a session opened before the drain may still send on it
    const session = h2session(gw)
    await new Promise((r) => session.once('connect', r))
    const stopping = gw.server.gateway.shutdown(3000)
    const reply = await new Promise<{ status: number; text: string }>((resolve) => {
      const s = session.request({
        ':path': `/api/v1/namespaces/${NS}/configmaps?limit=1`,
        authorization: `Bearer ${token}`,
      })
      let text = ''
      let status = 0
      s.on('response', (h) => (status = Number(h[':status'])))
      s.setEncoding('utf8')
      s.on('data', (d: string) => (text += d))
      s.on('close', () => resolve({ status, text }))
      s.on('error', () => resolve({ status, text }))
    })
    await stopping
    watch.close()
    session.destroy()
    assert.equal(reply.status, 503)
    const status = statusOf(reply.text)
    assert.equal(status.reason, 'ServiceUnavailable')
    const id = /gatehouse request id ([\w-]+)/.exec(status.message)![1]!
    const rec = await records(gw, (r) => r.id === id)
    assert.equal(rec[0]?.error?.code, 'GW_SHUTTING_DOWN')
    await gw.stop()
  })
})
