// Differential proof of request classification: every request of a corpus goes to the real API
// server with a unique Audit-ID, and what Gatehouse computes must equal what the API server
// wrote in its own audit log for that request. Requests Gatehouse refuses as ambiguous are
// listed separately (they are never forwarded).
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { before, describe, test } from 'node:test'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import {
  adminClient,
  ensureNamespace,
  readAuditEvents,
  useCluster,
  type AuditEvent,
  type ClusterInfo,
} from '../../harness/index.ts'

const NS = `diff-${Math.random().toString(36).slice(2, 7)}`

interface Probe {
  method: string
  target: string
}

function corpus(): Probe[] {
  const out: Probe[] = []
  // Writes are dry runs: the corpus includes DELETE on cluster-scoped collections (nodes,
  // clusterroles), which would otherwise wipe the shared test cluster. dryRun does not change
  // the request's attributes.
  const add = (method: string, target: string): void => {
    const write = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)
    out.push({
      method,
      target: write ? `${target}${target.includes('?') ? '&' : '?'}dryRun=All` : target,
    })
  }
  const collections = [
    { base: '/api/v1', resource: 'pods', namespaced: true },
    { base: '/api/v1', resource: 'configmaps', namespaced: true },
    { base: '/api/v1', resource: 'secrets', namespaced: true },
    { base: '/api/v1', resource: 'services', namespaced: true },
    { base: '/api/v1', resource: 'nodes', namespaced: false },
    { base: '/api/v1', resource: 'persistentvolumes', namespaced: false },
    { base: '/apis/apps/v1', resource: 'deployments', namespaced: true },
    { base: '/apis/batch/v1', resource: 'jobs', namespaced: true },
    { base: '/apis/rbac.authorization.k8s.io/v1', resource: 'roles', namespaced: true },
    { base: '/apis/rbac.authorization.k8s.io/v1', resource: 'clusterroles', namespaced: false },
    { base: '/apis/widgets.example.com/v1', resource: 'widgets', namespaced: true },
    { base: '/apis/widgets.example.com/v1', resource: 'gadgets', namespaced: false },
  ]
  for (const c of collections) {
    const coll = c.namespaced
      ? `${c.base}/namespaces/${NS}/${c.resource}`
      : `${c.base}/${c.resource}`
    const item = `${coll}/probe-1`
    for (const m of ['GET', 'POST', 'DELETE']) add(m, coll)
    for (const m of ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']) add(m, item)
    add('GET', `${coll}?watch=1&timeoutSeconds=1`)
    add('GET', `${coll}?watch=true&timeoutSeconds=1`)
    add('GET', `${coll}?watch=false`)
    add('GET', `${coll}?watch=0`)
    add('GET', `${coll}?fieldSelector=metadata.name%3Dprobe-1`)
    add('GET', `${coll}?fieldSelector=metadata.name%3D%3Dprobe-1&watch=1&timeoutSeconds=1`)
    add('GET', `${coll}?fieldSelector=metadata.name!%3Dprobe-1`)
    add('GET', `${coll}?fieldSelector=status.phase%3DRunning,metadata.name%3Dprobe-2`)
    add('GET', `${coll}?labelSelector=app%3Dweb&limit=5`)
    add('GET', `${coll}/`)
    add(
      'GET',
      `${c.base}/watch/${c.namespaced ? `namespaces/${NS}/` : ''}${c.resource}?timeoutSeconds=1`,
    )
    add(
      'GET',
      `${c.base}/watch/${c.namespaced ? `namespaces/${NS}/` : ''}${c.resource}/probe-1?timeoutSeconds=1`,
    )
    add('PUT', `${item}/status`)
    add('GET', `${item}/status`)
    add('GET', coll.replace(c.resource, encodeURIComponent(c.resource).replace('s', '%73')))
    if (c.namespaced) {
      add('GET', `${c.base}/${c.resource}`) // all namespaces
      add('GET', `${c.base}/${c.resource}?watch=1&timeoutSeconds=1`)
      add('GET', coll.replace(NS, NS.replace('d', '%64')))
    }
  }
  const pod = `/api/v1/namespaces/${NS}/pods/probe-1`
  for (const sub of [
    'log',
    'exec?command=ls',
    'attach',
    'portforward',
    'proxy',
    'proxy/some/path',
    'binding',
    'eviction',
    'ephemeralcontainers',
  ]) {
    add('GET', `${pod}/${sub}`)
    add('POST', `${pod}/${sub}`)
  }
  add('GET', `/api/v1/namespaces/${NS}/services/web:80/proxy/metrics`)
  add('GET', `/api/v1/nodes/fake-node/proxy/stats`)
  add('GET', `/api/v1/proxy/namespaces/${NS}/pods/probe-1/x`)
  add('GET', `/apis/apps/v1/namespaces/${NS}/deployments/probe-1/scale`)
  add('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/probe-1/scale`)
  for (const m of ['GET', 'PUT', 'DELETE', 'PATCH']) add(m, `/api/v1/namespaces/${NS}`)
  add('PUT', `/api/v1/namespaces/${NS}/finalize`)
  add('PUT', `/api/v1/namespaces/${NS}/status`)
  add('GET', '/api/v1/namespaces')
  add('GET', '/api/v1/namespaces?watch=1&timeoutSeconds=1')
  add('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')
  add('POST', `/api/v1/namespaces/${NS}/serviceaccounts/default/token`)
  add('GET', '/apis/unknown.example.com/v1/things')
  add('GET', `/api/v1/namespaces/${NS}/unknownthings/x/y/z`)
  add('GET', '/api/v2/pods')
  for (const p of [
    '/api',
    '/api/v1',
    '/apis',
    '/apis/apps',
    '/apis/apps/v1',
    '/version',
    '/healthz',
    '/livez',
    '/readyz',
    '/openapi/v2',
    '/metrics',
    '/.well-known/openid-configuration',
    '/openid/v1/jwks',
    '/logs',
    '/nonexistent/path',
    '/',
  ]) {
    add('GET', p)
  }
  add('POST', '/version')
  // New since kube-apiserver 1.20 (each also in the discovery-driven probes below where served):
  // pod subresources, SelfSubjectReview, admission policies, DRA, flow control, storage
  // migration, and the current spellings of streaming lists.
  for (const m of ['GET', 'PATCH', 'PUT']) {
    add(m, `${pod}/resize`)
    add(m, `${pod}/ephemeralcontainers`)
  }
  add('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews')
  add('POST', '/apis/authentication.k8s.io/v1beta1/selfsubjectreviews')
  add('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews')
  add('POST', `/apis/authorization.k8s.io/v1/namespaces/${NS}/localsubjectaccessreviews`)
  const clusterScoped = [
    '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
    '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings',
    '/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies',
    '/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies',
    '/apis/resource.k8s.io/v1/deviceclasses',
    '/apis/resource.k8s.io/v1/resourceslices',
    '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas',
    '/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations',
    '/apis/storagemigration.k8s.io/v1/storageversionmigrations',
    '/apis/storagemigration.k8s.io/v1beta1/storageversionmigrations',
    '/apis/networking.k8s.io/v1/servicecidrs',
    '/apis/networking.k8s.io/v1/ipaddresses',
    '/apis/certificates.k8s.io/v1beta1/clustertrustbundles',
  ]
  for (const coll of clusterScoped) {
    for (const m of ['GET', 'POST', 'DELETE']) add(m, coll)
    for (const m of ['GET', 'PUT', 'PATCH', 'DELETE']) add(m, `${coll}/probe-1`)
    add('PUT', `${coll}/probe-1/status`)
    add('GET', `${coll}?watch=1&timeoutSeconds=1`)
  }
  for (const res of ['resourceclaims', 'resourceclaimtemplates']) {
    const coll = `/apis/resource.k8s.io/v1/namespaces/${NS}/${res}`
    for (const m of ['GET', 'POST', 'DELETE']) add(m, coll)
    for (const m of ['GET', 'PUT', 'PATCH', 'DELETE']) add(m, `${coll}/probe-1`)
    add('PUT', `${coll}/probe-1/status`)
    add('GET', `/apis/resource.k8s.io/v1/${res}`)
  }
  add('GET', `/apis/certificates.k8s.io/v1beta1/namespaces/${NS}/podcertificaterequests`)
  // Streaming lists (WatchList): the API server calls them watch.
  for (const coll of [
    `/api/v1/namespaces/${NS}/secrets`,
    `/api/v1/configmaps`,
    `/apis/apps/v1/namespaces/${NS}/deployments`,
  ]) {
    add(
      'GET',
      `${coll}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1`,
    )
    add(
      'GET',
      `${coll}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&timeoutSeconds=1`,
    )
    add('GET', `${coll}?sendInitialEvents=false&watch=false`)
  }
  add('GET', '/apis/apps/v1/deployments?limit=1&continue=')
  add('GET', '/openapi/v3')
  add('GET', '/openapi/v3/api/v1')
  add('GET', '/apis/apps/v1?timeout=32s')
  add('GET', '/flowcontrol/v1/whatever')
  // Refused by Gatehouse (not sent): ambiguous spellings.
  for (const t of [
    `/api/v1/namespaces/${NS}/pods/a%2Fb`,
    `/api/v1/namespaces//pods`,
    `/api/v1/namespaces/${NS}/pods/../secrets`,
    `/api/v1/namespaces/${NS}/pods/%2e%2e`,
    `/api/v1/pods?watch=true;x=1`,
    `/api/v1/pods?watch=maybe`,
    `/api/v1/secrets?fieldSelector=metadata.name%3Da%5C,b`,
    `/api/v1/watch`,
  ]) {
    add('GET', t)
  }
  return out
}

interface Sent {
  probe: Probe
  auditId: string
  status: number
}

function send(cluster: ClusterInfo, probe: Probe, auditId: string): Promise<number> {
  const url = new URL(cluster.server)
  const hasBody = ['POST', 'PUT', 'PATCH'].includes(probe.method)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: probe.method,
        path: probe.target, // the exact bytes of the corpus on the wire
        ca: readFileSync(cluster.caFile),
        headers: {
          authorization: `Bearer ${cluster.adminToken}`,
          'audit-id': auditId,
          accept: 'application/json',
          ...(hasBody
            ? {
                'content-type':
                  probe.method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
              }
            : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        res.resume()
        // Watches and follows may stream: the status line is all we need.
        setTimeout(() => res.destroy(), 50)
        resolve(res.statusCode ?? 0)
      },
    )
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`timeout: ${probe.method} ${probe.target}`)))
    req.end(hasBody ? '{}' : undefined)
  })
}

interface DiscoveredResource {
  name: string
  namespaced: boolean
  verbs?: string[]
}

/**
 * Whatever this API server serves: for every resource and subresource its discovery lists, the
 * requests a client makes (list, get, a watch, and the write its verbs name). So the corpus
 * covers what a newer server adds without anyone listing it here.
 */
async function discoveryProbes(cluster: ClusterInfo): Promise<Probe[]> {
  const admin = adminClient(cluster)
  const versions: string[] = ['/api/v1']
  const groups = await admin.json<{
    groups: { versions: { groupVersion: string }[] }[]
  }>('GET', '/apis')
  for (const g of groups.groups)
    for (const v of g.versions) versions.push(`/apis/${v.groupVersion}`)
  const out: Probe[] = []
  const add = (method: string, target: string): void => {
    const write = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)
    out.push({
      method,
      target: write ? `${target}${target.includes('?') ? '&' : '?'}dryRun=All` : target,
    })
  }
  for (const base of versions) {
    const list = await admin.json<{ resources: DiscoveredResource[] }>('GET', base)
    for (const r of list.resources) {
      const [resource, sub] = r.name.split('/') as [string, string | undefined]
      const coll = r.namespaced ? `${base}/namespaces/${NS}/${resource}` : `${base}/${resource}`
      const verbs = new Set(r.verbs ?? [])
      if (sub) {
        const item = `${coll}/probe-1/${sub}`
        add('GET', item)
        if (verbs.has('create')) add('POST', item)
        if (verbs.has('update')) add('PUT', item)
        if (verbs.has('patch')) add('PATCH', item)
        continue
      }
      add('GET', coll)
      add('GET', `${coll}/probe-1`)
      if (verbs.has('watch')) add('GET', `${coll}?watch=1&timeoutSeconds=1`)
      if (verbs.has('create')) add('POST', coll)
      if (verbs.has('delete')) add('DELETE', `${coll}/probe-1`)
      if (verbs.has('deletecollection')) add('DELETE', coll)
    }
  }
  await admin.close()
  return out
}

describe('request classification equals the API server audit log', () => {
  let cluster: ClusterInfo
  before(async () => {
    cluster = await useCluster()
    const admin = adminClient(cluster)
    await ensureNamespace(admin, NS)
    for (const [plural, scope] of [
      ['widgets', 'Namespaced'],
      ['gadgets', 'Cluster'],
    ] as const) {
      await admin.ensure('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.widgets.example.com` },
        spec: {
          group: 'widgets.example.com',
          scope,
          names: {
            plural,
            singular: plural.slice(0, -1),
            kind: plural[0]!.toUpperCase() + plural.slice(1, -1),
          },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          ],
        },
      })
    }
  })

  test('>= 400 requests, zero divergence', async (t) => {
    const probes = [...corpus(), ...(await discoveryProbes(cluster))]
    const sent: Sent[] = []
    const refused: string[] = []
    for (const probe of probes) {
      const parsed = parseRequestInfo(probe.method, probe.target)
      if (!parsed.ok) {
        refused.push(`${probe.method} ${probe.target}: ${parsed.reason}`)
        continue
      }
      const auditId = randomUUID()
      sent.push({ probe, auditId, status: await send(cluster, probe, auditId) })
    }
    assert.ok(probes.length >= 400, `corpus has ${probes.length} requests`)
    assert.equal(
      refused.length,
      8,
      `exactly the ambiguous spellings are refused:\n${refused.join('\n')}`,
    )

    // The audit backend writes after responses; wait until every forwarded request is logged.
    const byId = new Map<string, AuditEvent>()
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      for (const e of readAuditEvents(cluster.auditLogPath)) byId.set(e.auditID, e)
      if (sent.every((s) => byId.has(s.auditId))) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const missing = sent.filter((s) => !byId.has(s.auditId))
    assert.deepEqual(
      missing.map((s) => `${s.probe.method} ${s.probe.target} (HTTP ${s.status})`),
      [],
      'every forwarded request has an audit event under the Audit-ID we sent (the API server keeps it)',
    )

    const divergences: string[] = []
    for (const s of sent) {
      const event = byId.get(s.auditId)!
      const parsed = parseRequestInfo(s.probe.method, s.probe.target)
      assert.ok(parsed.ok)
      const mine = parsed.info
      const ref = event.objectRef ?? {}
      const theirs = {
        verb: event.verb,
        apiGroup: ref.apiGroup ?? '',
        apiVersion: ref.apiVersion ?? '',
        namespace: ref.namespace ?? '',
        resource: ref.resource ?? '',
        subresource: ref.subresource ?? '',
        name: ref.name ?? '',
        isResourceRequest: event.objectRef !== undefined,
      }
      // The audit log writes apiGroup "" as absent and apiVersion only with a group or "v1".
      const ours = {
        verb: mine.verb,
        apiGroup: mine.apiGroup,
        apiVersion: mine.isResourceRequest ? mine.apiVersion : '',
        namespace: mine.namespace,
        resource: mine.resource,
        subresource: mine.subresource,
        name: mine.name,
        isResourceRequest: mine.isResourceRequest,
      }
      for (const key of Object.keys(theirs) as (keyof typeof theirs)[]) {
        if (theirs[key] !== ours[key])
          divergences.push(
            `${s.probe.method} ${s.probe.target}: ${key} apiserver=${JSON.stringify(theirs[key])} gatehouse=${JSON.stringify(ours[key])}`,
          )
      }
    }
    assert.deepEqual(divergences, [], `divergences:\n${divergences.join('\n')}`)
    const admin = adminClient(cluster)
    const { gitVersion } = await admin.json<{ gitVersion: string }>('GET', '/version')
    await admin.close()
    t.diagnostic(
      `${probes.length} requests (${sent.length} forwarded, ${refused.length} refused) against kube-apiserver ${gitVersion}: zero divergence`,
    )
  })
})
