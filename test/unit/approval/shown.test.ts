// What approvers are shown: the body whole (JSON and YAML decoded, protobuf through the dry run,
// text as text, small binaries as hex) or a refusal, never a part; and the fields that matter
// pulled to the top whatever comes before them in the object.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { highlightsOf } from '../../../src/approval/highlights.ts'
import { showBody, type DryRunOutcome } from '../../../src/approval/shown.ts'
import { decodeBody, type RequestObject } from '../../../src/kube/body.ts'
import { GatewayError } from '../../../src/errors/index.ts'
import { parseGoQuery } from '../../../src/kube/query.ts'

const crb = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name: 'everyone-admin', annotations: { padding: 'x'.repeat(70 * 1024) } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
  subjects: [
    { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' },
  ],
}
const none = new Map<string, string[]>()

/** showBody as the approval service calls it: with the body as readBody decoded it. */
function show(data: Buffer, contentType: string, dry: DryRunOutcome | undefined) {
  const d = decodeBody(data, contentType)
  const decoded: RequestObject = d.ok
    ? { value: d.value, format: d.format }
    : { unavailable: 'undecoded' in d ? d.undecoded : d.refused }
  return showBody(data, contentType, decoded, dry)
}
const create = { resource: 'clusterrolebindings', subresource: '', verb: 'create', method: 'POST' }

describe('the body approvers see', () => {
  it('decodes a 70 KB JSON body whole, roleRef and subjects included', () => {
    const r = show(Buffer.from(JSON.stringify(crb)), 'application/json', undefined)
    assert.equal(r.body?.shownAs, 'decoded')
    assert.ok(r.body.text.length > 70 * 1024, 'not cut')
    assert.match(r.body.text, /"name": "system:authenticated"/)
    assert.match(r.body.text, /"name": "cluster-admin"/)
  })

  it('decodes YAML (server-side apply) and shows it as JSON', () => {
    const r = show(
      Buffer.from('kind: ConfigMap\nmetadata:\n  name: c\n'),
      'application/apply-patch+yaml',
      undefined,
    )
    assert.equal(r.body?.shownAs, 'decoded')
    assert.deepEqual(r.object, { kind: 'ConfigMap', metadata: { name: 'c' } })
  })

  it('shows a protobuf body through the dry run, or refuses when there is none to read', () => {
    const proto = Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x01, 0x79])
    const ok = show(proto, 'application/vnd.kubernetes.protobuf', {
      code: 201,
      text: '{}',
      object: crb,
    })
    assert.equal(ok.body?.shownAs, 'dry-run')
    assert.equal(ok.object, crb)
    for (const dry of [undefined, { error: 'timeout' }, { code: 409, text: 'AlreadyExists' }]) {
      assert.throws(
        () => show(proto, 'application/vnd.kubernetes.protobuf', dry),
        (e: unknown) => e instanceof GatewayError && e.code === 'GW_APPROVAL_UNSHOWABLE',
      )
    }
  })

  it('shows small binary bodies as hex and refuses large ones rather than cut them', () => {
    const small = show(Buffer.from([0xff, 0x00, 0x41]), 'application/octet-stream', undefined)
    assert.equal(small.body?.shownAs, 'hex')
    assert.match(small.body.text, /^00000000 {2}ff 00 41 +\.\.A$/)
    assert.throws(
      () => show(Buffer.alloc(65 * 1024, 0xff), 'application/octet-stream', undefined),
      (e: unknown) => e instanceof GatewayError && e.code === 'GW_APPROVAL_TOO_LARGE',
    )
    assert.throws(
      () => show(Buffer.alloc(3 * 1024 * 1024, 0x61), 'text/plain', undefined),
      (e: unknown) => e instanceof GatewayError && e.code === 'GW_APPROVAL_TOO_LARGE',
    )
  })
})

describe('highlights', () => {
  it('puts roleRef and subjects of a binding first, whatever the annotation before them', () => {
    assert.deepEqual(highlightsOf(create, none, crb), [
      { field: 'roleRef', value: crb.roleRef },
      { field: 'subjects', value: crb.subjects },
    ])
  })

  it("shows a workload's images, privileges, host access and service account", () => {
    const deployment = {
      kind: 'Deployment',
      spec: {
        template: {
          spec: {
            serviceAccountName: 'builder',
            hostPID: true,
            volumes: [
              { name: 'root', hostPath: { path: '/' } },
              { name: 'tmp', emptyDir: {} },
            ],
            containers: [
              { name: 'app', image: 'registry/app:1', securityContext: { privileged: true } },
            ],
          },
        },
      },
    }
    const h = highlightsOf({ ...create, resource: 'deployments' }, none, deployment)
    assert.deepEqual(h, [
      { field: 'containers[0]', value: { name: 'app', image: 'registry/app:1', privileged: true } },
      { field: 'serviceAccountName', value: 'builder' },
      { field: 'hostPID', value: true },
      { field: 'hostPath volumes', value: [{ name: 'root', path: '/' }] },
    ])
  })

  it('shows the argv of an exec as a list, and what a deletecollection would delete', () => {
    const q = parseGoQuery('command=sh&command=-c&command=rm%20-rf%20%2F&container=app&stdin=true')
    assert.ok('query' in q)
    const exec = highlightsOf(
      { resource: 'pods', subresource: 'exec', verb: 'create', method: 'POST' },
      q.query,
      undefined,
    )
    assert.deepEqual(exec[0], { field: 'command', value: ['sh', '-c', 'rm -rf /'] })
    assert.deepEqual(exec[1], { field: 'container', value: 'app' })
    const list = {
      kind: 'ConfigMapList',
      items: [
        { metadata: { namespace: 'p', name: 'a' } },
        { metadata: { namespace: 'p', name: 'b' } },
      ],
    }
    assert.deepEqual(highlightsOf({ ...create, verb: 'deletecollection' }, none, list), [
      { field: 'items (2)', value: ['p/a', 'p/b'] },
    ])
  })
})
