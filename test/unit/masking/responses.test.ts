// Which responses are masked and how: by the request's attributes (never its spelling), JSON
// asked for instead of protobuf with as=Table kept, unmaskable responses refused; custom field
// paths; who sees values (policy obligation); the HMAC key; audit bodies.
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { buildAuditRecord } from '../../../src/audit/build.ts'
import { gatewayConfigSchema } from '../../../src/config/schema.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import {
  compileFieldRules,
  defaultObjectRules,
  maskKubernetesJson,
} from '../../../src/masking/objects.ts'
import { Masking } from '../../../src/masking/profile.ts'
import {
  bodyMaskerFor,
  jsonAccept,
  maskPlanFor,
  UnmaskableResponse,
} from '../../../src/masking/responses.ts'
import type { RequestFacts } from '../../../src/request/facts.ts'
import type { Decision } from '../../../src/policy/decision.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const masking = (over: Record<string, unknown> = {}, dir = tempDir('gh-mask-')) =>
  new Masking(gatewayConfigSchema.shape.masking.parse({ ...over }), dir)

function plan(method: string, target: string) {
  const r = parseRequestInfo(method, target)
  assert.ok(r.ok)
  return maskPlanFor(r.info, new URLSearchParams(target.split('?')[1] ?? ''))
}

test('the plan follows the request attributes: objects, lists, watches, logs, proxies; not discovery', () => {
  assert.equal(plan('GET', '/api/v1/namespaces/a/secrets/db')?.shape, 'object')
  assert.deepEqual(plan('GET', '/api/v1/namespaces/a/secrets/db')?.typeHint, {
    kind: 'Secret',
    apiVersion: 'v1',
  })
  assert.equal(plan('GET', '/api/v1/secrets')?.shape, 'list')
  assert.equal(plan('GET', '/api/v1/namespaces/a/secrets?watch=1')?.shape, 'watch')
  assert.equal(plan('GET', '/api/v1/watch/namespaces/a/secrets')?.shape, 'watch')
  assert.equal(plan('GET', '/api/v1/namespaces/a/secrets?watch=1')?.streaming, true)
  assert.equal(plan('PATCH', '/api/v1/namespaces/a/secrets/db')?.shape, 'object')
  assert.equal(plan('DELETE', '/api/v1/namespaces/a/configmaps')?.shape, 'list')
  assert.deepEqual(plan('GET', '/api/v1/namespaces/a/pods/p/log?follow=true'), {
    body: 'text',
    shape: 'object',
    streaming: true,
  })
  assert.equal(plan('GET', '/api/v1/namespaces/a/pods/p/log')?.streaming, false)
  assert.equal(plan('GET', '/api/v1/namespaces/a/services/s/proxy/metrics')?.body, 'text')
  assert.equal(plan('GET', '/apis/example.com/v1/namespaces/a/databases/x')?.body, 'json')
  for (const t of ['/api', '/apis', '/version', '/openapi/v2', '/healthz'])
    assert.equal(plan('GET', t), undefined, t)
})

test('Accept: protobuf, CBOR and YAML become JSON with their parameters; JSON and */* stay', () => {
  assert.equal(jsonAccept(undefined), 'application/json')
  assert.equal(
    jsonAccept('application/vnd.kubernetes.protobuf,application/json'),
    'application/json',
  )
  assert.equal(
    jsonAccept(
      'application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    ),
    'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
  )
  assert.equal(jsonAccept('application/yaml'), 'application/json')
  assert.equal(jsonAccept('application/cbor, */*'), 'application/json,*/*')
})

test('what arrived decides the masker: JSON decoded, text streamed, anything else refused', () => {
  const profile = masking().forRecords
  const json = plan('GET', '/api/v1/namespaces/a/secrets/db')!
  assert.ok(bodyMaskerFor(json, profile, 200, { 'content-type': 'application/json' }, 1 << 20))
  assert.ok(
    bodyMaskerFor(json, profile, 500, { 'content-type': 'text/plain; charset=utf-8' }, 1 << 20),
  )
  assert.throws(
    () =>
      bodyMaskerFor(
        json,
        profile,
        200,
        { 'content-type': 'application/vnd.kubernetes.protobuf' },
        1 << 20,
      ),
    UnmaskableResponse,
  )
  assert.throws(
    () =>
      bodyMaskerFor(
        json,
        profile,
        200,
        { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        1 << 20,
      ),
    /gzip-encoded/,
  )
  const log = plan('GET', '/api/v1/namespaces/a/pods/p/log')!
  assert.ok(
    bodyMaskerFor(log, profile, 200, { 'content-type': 'application/octet-stream' }, 1 << 20),
  )
})

test('custom field paths mask a kind (custom resources included), whatever the fields hold', () => {
  const rules = {
    ...defaultObjectRules(),
    fields: compileFieldRules([
      {
        apiGroup: 'db.example.com',
        kind: 'Database',
        paths: ['spec.password', 'spec.users[*].token', 'spec.conn.*'],
      },
    ]),
  }
  const db = {
    apiVersion: 'db.example.com/v1',
    kind: 'Database',
    spec: {
      engine: 'pg',
      password: 'p1',
      users: [{ name: 'a', token: 't1' }, { name: 'b' }],
      conn: { host: 'h', nested: { dsn: 'x' }, port: 5432 },
    },
  }
  const { value, masked } = maskKubernetesJson(db, rules)
  assert.deepEqual((value as typeof db).spec, {
    engine: 'pg',
    password: '[MASKED:field]',
    users: [{ name: 'a', token: '[MASKED:field]' }, { name: 'b' }],
    conn: { host: '[MASKED:field]', nested: { dsn: '[MASKED:field]' }, port: 5432 },
  })
  assert.equal(masked, 4)
  // another group's Database, and a list of them (items typed by the list)
  assert.equal(maskKubernetesJson({ ...db, apiVersion: 'other.io/v1' }, rules).masked, 0)
  const list = {
    apiVersion: 'db.example.com/v1',
    kind: 'DatabaseList',
    items: [{ spec: { password: 'p2' } }],
  }
  assert.equal(JSON.stringify(maskKubernetesJson(list, rules).value).includes('p2'), false)
})

test('who sees values: masked unless the decision says mask.enabled false; the replacement follows policy', () => {
  const m = masking()
  const decision = (mask?: Decision['obligations']['mask']): Decision => ({
    action: 'allow',
    policy: 'p',
    rule: 'r',
    obligations: { audit: 'metadata', ...(mask ? { mask } : {}) },
  })
  assert.equal(m.forDecision(decision())?.replacement.kind, 'placeholder')
  assert.equal(m.forDecision(decision({ enabled: false })), undefined)
  assert.equal(m.forDecision(decision({ replacement: 'partial' }))?.replacement.kind, 'partial')
  assert.equal(Masking.source(decision()), "policy 'p', rule 'r'")
})

test('the HMAC key: created once with mode 0600 and reused; a short configured key is refused', () => {
  const dir = tempDir('gh-mask-')
  const a = masking({ replacement: 'hmac' }, dir)
  const key = readFileSync(join(dir, 'masking-hmac.key'))
  assert.equal(key.length, 32)
  assert.equal(statSync(join(dir, 'masking-hmac.key')).mode & 0o777, 0o600)
  const b = masking({ replacement: 'hmac' }, dir)
  const h = (x: Masking) =>
    maskKubernetesJson({ v: '4111 1111 1111 1111' }, x.forRecords.objects).value as { v: string }
  assert.equal(h(a).v, h(b).v)
  assert.match(h(a).v, /^\[MASKED:card:hmac=[0-9a-f]{16}\]$/)
  const short = join(dir, 'short.key')
  writeFileSync(short, 'too short')
  assert.throws(() => masking({ hmacKeyFile: short }, dir), /holds 9 bytes/)
})

test('audit bodies: a Secret request body is kept masked (JSON), dropped when it cannot be decoded', () => {
  const target = '/api/v1/namespaces/a/secrets'
  const info = parseRequestInfo('POST', target)
  assert.ok(info.ok)
  const ctx = (contentType: string, body: Buffer): RequestFacts =>
    ({
      id: 'x',
      receivedAt: Date.now(),
      method: 'POST',
      target,
      headers: { 'content-type': contentType },
      info: info.info,
      body,
      decision: { action: 'allow', rule: 'r', obligations: { audit: 'request' } },
      sourceAddress: '',
    }) as unknown as RequestFacts
  const secret = {
    metadata: { name: 'db' },
    stringData: { password: 'hunter2-planted' },
    data: { k: 'aHVudGVyMg==' },
  }
  const kept = buildAuditRecord(
    ctx('application/json', Buffer.from(JSON.stringify(secret))),
    undefined,
    undefined,
    {
      maxBodyBytes: 4096,
    },
  ).requestBody
  assert.ok(kept && 'data' in kept)
  assert.ok(!kept.data.includes('hunter2') && !kept.data.includes('aHVudGVyMg=='), kept.data)
  assert.equal(kept.masked, 2)
  const proto = buildAuditRecord(
    ctx('application/vnd.kubernetes.protobuf', Buffer.from('k8s\0...hunter2')),
    undefined,
    undefined,
    {
      maxBodyBytes: 4096,
    },
  ).requestBody
  assert.ok(proto && 'omitted' in proto)
})
