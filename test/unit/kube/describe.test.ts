// Request descriptions built from structured fields: the scope comes before any client-chosen
// literal, literals are quoted with quotes, backslashes, controls and bidi characters escaped, so
// a name cannot forge a namespace, a scope, a qualifier or a line; one row per request shape.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describeRequest, quote } from '../../../src/kube/describe.ts'
import { parseGoQuery } from '../../../src/kube/query.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'

function described(method: string, target: string, objectName?: string): string {
  const r = parseRequestInfo(method, target)
  assert.ok(r.ok, target)
  const q = parseGoQuery(target.split('?')[1] ?? '')
  assert.ok('query' in q)
  return describeRequest(r.info, {
    query: q.query,
    method,
    ...(objectName !== undefined ? { objectName } : {}),
  })
}

describe('describeRequest', () => {
  const rows: [string, string, string, string?][] = [
    ['DELETE', '/api/v1/namespaces/prod', 'delete namespaces cluster-wide named "prod"'],
    ['GET', '/api/v1/secrets', 'list secrets cluster-wide'],
    ['GET', '/api/v1/namespaces/a/secrets/db', 'get secrets in namespace "a" named "db"'],
    [
      'DELETE',
      '/api/v1/namespaces/prod/configmaps/victim?dryRun=All',
      'delete configmaps in namespace "prod" named "victim" (dry run)',
    ],
    [
      'DELETE',
      '/api/v1/namespaces/prod/configmaps?labelSelector=app%3Dweb',
      'deletecollection configmaps in namespace "prod" labelSelector "app=web"',
    ],
    [
      'POST',
      '/api/v1/namespaces/ns/pods/box/exec?command=ls&command=%2F&container=app&stdin=true&tty=true',
      'create pods/exec in namespace "ns" named "box" command ["ls", "/"] container "app" with a TTY with stdin',
    ],
    [
      'POST',
      '/api/v1/nodes/node-1/proxy/run/ns/pod/c?cmd=id',
      'create nodes/proxy cluster-wide named "node-1" POST path "/run/ns/pod/c"',
    ],
    [
      'PATCH',
      '/apis/apps/v1/namespaces/p/deployments/web?fieldManager=kubectl&force=true',
      'patch deployments.apps in namespace "p" named "web" (force)',
    ],
    ['GET', '/healthz', 'get path "/healthz"'],
    [
      'POST',
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      'create clusterrolebindings.rbac.authorization.k8s.io cluster-wide named "ci-view\\" in namespace \\"sandbox"',
      'ci-view" in namespace "sandbox',
    ],
  ]
  for (const [method, target, expected, objectName] of rows)
    it(`${method} ${target}`, () => assert.equal(described(method, target, objectName), expected))

  it('escapes controls, bidi overrides, isolates and invisible characters in literals', () => {
    assert.equal(quote('evil\u202etxt.exe'), '"evil\\u202etxt.exe"')
    assert.equal(
      quote('a\u2066b\u2069c\u200bd\u00ade\ufeff'),
      '"a\\u2066b\\u2069c\\u200bd\\u00ade\\ufeff"',
    )
    assert.equal(
      quote('x\u001b[8my\r\nz\u009b\u0085'),
      '"x\\u001b[8my\\u000d\\u000az\\u009b\\u0085"',
    )
    assert.equal(quote('back\\slash "q"'), '"back\\\\slash \\"q\\""')
    assert.equal(quote('tag\u{e0041}'), '"tag\\u{e0041}"')
    const s = described('GET', '/api/v1/namespaces/a/configmaps/x%E2%80%AEy')
    assert.ok(!s.includes('\u202e'))
    assert.match(s, /named "x\\u202ey"/)
  })

  it('names the scope before any literal, so a name cannot pretend to another one', () => {
    const s = described(
      'POST',
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      'x" cluster-wide named "y',
    )
    // the whole name is one literal: quotes inside it are escaped, so it ends where it ends
    assert.match(
      s,
      /^create clusterrolebindings\.rbac\.authorization\.k8s\.io cluster-wide named "(?:[^"\\]|\\.)*"$/,
    )
  })
})
