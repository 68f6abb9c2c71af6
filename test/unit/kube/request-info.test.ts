import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { parseRequestInfo, type RequestInfo } from '../../../src/kube/request-info.ts'

function info(method: string, url: string): RequestInfo {
  const r = parseRequestInfo(method, url)
  assert.ok(r.ok, `expected ${method} ${url} to parse, got: ${r.ok ? '' : r.reason}`)
  return r.info
}

type Expect = Partial<
  Pick<
    RequestInfo,
    | 'verb'
    | 'authzVerb'
    | 'apiGroup'
    | 'apiVersion'
    | 'namespace'
    | 'resource'
    | 'subresource'
    | 'name'
    | 'isResourceRequest'
  >
>

const cases: [string, string, Expect][] = [
  [
    'GET',
    '/api/v1/pods',
    { verb: 'list', resource: 'pods', namespace: '', apiGroup: '', apiVersion: 'v1' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/pods',
    { verb: 'list', resource: 'pods', namespace: 'default' },
  ],
  ['GET', '/api/v1/namespaces/default/pods/web', { verb: 'get', name: 'web' }],
  ['HEAD', '/api/v1/namespaces/default/pods/web', { verb: 'get', name: 'web' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=true', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=1', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=false', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=0', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/default/pods?watch=TRUE', { verb: 'watch' }],
  [
    'GET',
    '/api/v1/watch/namespaces/default/pods',
    { verb: 'watch', resource: 'pods', namespace: 'default' },
  ],
  ['GET', '/api/v1/watch/namespaces/default/pods/web', { verb: 'watch', name: 'web' }],
  [
    'GET',
    '/apis/apps/v1/watch/deployments',
    { verb: 'watch', apiGroup: 'apps', resource: 'deployments' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dtoken',
    { verb: 'list', name: 'token', resource: 'secrets' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/secrets?fieldSelector=metadata.name==token&watch=true',
    { verb: 'watch', name: 'token' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/secrets?fieldSelector=metadata.name!=token',
    { verb: 'list', name: '' },
  ],
  ['GET', '/api/v1/secrets?fieldSelector=type%3Dx,metadata.name%3Db', { verb: 'list', name: 'b' }],
  ['GET', '/api/v1/secrets?fieldSelector=metadata.name%3D..', { verb: 'list', name: '' }],
  ['POST', '/api/v1/namespaces/default/pods', { verb: 'create', name: '' }],
  ['PUT', '/api/v1/namespaces/default/pods/web', { verb: 'update', name: 'web' }],
  ['PATCH', '/api/v1/namespaces/default/pods/web', { verb: 'patch' }],
  ['DELETE', '/api/v1/namespaces/default/pods/web', { verb: 'delete', name: 'web' }],
  ['DELETE', '/api/v1/namespaces/default/pods', { verb: 'deletecollection', name: '' }],
  ['PUT', '/api/v1/namespaces/default/pods/web/status', { verb: 'update', subresource: 'status' }],
  [
    'GET',
    '/api/v1/namespaces/default/pods/web/log?follow=true',
    { verb: 'get', subresource: 'log' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/pods/web/exec?command=ls',
    { verb: 'get', authzVerb: 'create', subresource: 'exec' },
  ],
  [
    'POST',
    '/api/v1/namespaces/default/pods/web/exec?command=ls',
    { verb: 'create', authzVerb: 'create', subresource: 'exec' },
  ],
  [
    'POST',
    '/api/v1/namespaces/default/pods/web/portforward',
    { authzVerb: 'create', subresource: 'portforward' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/pods/web/attach',
    { authzVerb: 'create', subresource: 'attach' },
  ],
  [
    'GET',
    '/api/v1/namespaces/default/services/web:80/proxy/metrics',
    { authzVerb: 'create', subresource: 'proxy', name: 'web:80' },
  ],
  [
    'GET',
    '/api/v1/proxy/namespaces/default/pods/web/x/y',
    { verb: 'proxy', authzVerb: 'create', subresource: '', name: 'web' },
  ],
  [
    'GET',
    '/api/v1/namespaces/kube-system',
    { verb: 'get', resource: 'namespaces', name: 'kube-system', namespace: 'kube-system' },
  ],
  [
    'PUT',
    '/api/v1/namespaces/gone/finalize',
    {
      verb: 'update',
      resource: 'namespaces',
      subresource: 'finalize',
      namespace: 'gone',
      name: 'gone',
    },
  ],
  ['PUT', '/api/v1/namespaces/x/status', { resource: 'namespaces', subresource: 'status' }],
  ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '' }],
  [
    'GET',
    '/apis/apps/v1/namespaces/default/deployments/web/scale',
    { apiGroup: 'apps', subresource: 'scale', name: 'web' },
  ],
  [
    'GET',
    '/apis/widgets.example.com/v1alpha1/namespaces/a/widgets',
    { apiGroup: 'widgets.example.com', apiVersion: 'v1alpha1', resource: 'widgets' },
  ],
  [
    'GET',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin',
    { resource: 'clusterroles', name: 'admin', namespace: '' },
  ],
  ['GET', '/api/v1/namespaces/d%65fault/pods', { namespace: 'default' }],
  ['GET', '/api/v1/namespaces/default/pods/', { verb: 'list', resource: 'pods' }],
  ['GET', '/api', { isResourceRequest: false, verb: 'get' }],
  ['GET', '/api/v1', { isResourceRequest: false }],
  ['GET', '/apis/apps/v1', { isResourceRequest: false }],
  ['GET', '/version', { isResourceRequest: false }],
  ['GET', '/openapi/v2', { isResourceRequest: false }],
  ['POST', '/healthz', { isResourceRequest: false, verb: 'post' }],
]

describe('request classification (as kube-apiserver RequestInfo)', () => {
  for (const [method, url, expected] of cases) {
    test(`${method} ${url}`, () => {
      const got = info(method, url)
      for (const [k, v] of Object.entries(expected))
        assert.equal(got[k as keyof RequestInfo], v, `${k} of ${method} ${url}`)
      if (expected.isResourceRequest === undefined) assert.equal(got.isResourceRequest, true)
    })
  }

  const refused: [string, string, RegExp][] = [
    ['GET', '/api/v1/namespaces/default/pods/a%2Fb', /encodes/],
    ['GET', '/api/v1/namespaces/default/pods/a%252Fb', /encodes/],
    ['GET', '/api/v1/namespaces//pods', /empty segment/],
    ['GET', '//api/v1/pods', /empty segment/],
    ['GET', '/api/v1/namespaces/default/pods/../secrets', /dot segment/],
    ['GET', '/api/v1/namespaces/default/pods/%2e%2e/secrets', /dot segment/],
    ['GET', '/api/v1/namespaces/./pods', /dot segment/],
    ['GET', '/api/v1/pods/%zz', /malformed percent-encoding/],
    ['GET', '/api/v1/pods/%ff', /malformed percent-encoding/],
    ['GET', '/api/v1/pods?watch=true;x=1', /';'/],
    ['GET', '/api/v1/pods?watch=yes', /watch=yes/],
    ['GET', '/api/v1/pods?watch=true&watch=false', /conflicting watch/],
    ['GET', '/api/v1/pods?watch=%zz', /malformed percent-encoding/],
    ['GET', '/api/v1/secrets?fieldSelector=metadata.name%3Da%5C,b', /backslash/],
    ['GET', '/api/v1/secrets?fieldSelector=nonsense', /no operator/],
    [
      'GET',
      '/api/v1/secrets?fieldSelector=metadata.name%3Da&fieldSelector=metadata.name%3Db',
      /conflicting fieldSelector/,
    ],
    ['GET', '/api/v1/secrets?limit=abc', /limit=abc is not an integer/],
    ['GET', '/api/v1/secrets?labelSelector=%3C%3E', /labelSelector/],
    ['GET', '/api/v1/watch', /must be followed by a resource/],
    ['GET', 'http://evil/api/v1/pods', /absolute path/],
    ['GET', '*', /absolute path/],
    ['GET', '/api/v1/pods#frag', /'#'/],
    ['GET', '/api/v1/pods\\x', /backslash/],
    ['GET', '/api/v1/pods/a b', /spaces/],
    ['GET', '/api/v1/pods/%20x', /decodes to a space/],
    ['GET', '/api/v1/pods/caf%C3%A9%00', /encodes/],
    ['OPTIONS', '/api/v1/pods', /no Kubernetes verb/],
    ['TRACE', '/version', /not used by Kubernetes clients/],
    ['get', '/api/v1/pods', /not upper-case/],
    ['GET', `/api/v1/namespaces/${'a'.repeat(9000)}`, /longer than 8192/],
  ]
  for (const [method, url, reason] of refused) {
    test(`refuses ${method} ${url.slice(0, 70)}`, () => {
      const r = parseRequestInfo(method, url)
      assert.equal(r.ok, false, 'must fail closed')
      assert.match(r.ok ? '' : r.reason, reason)
    })
  }

  test('property: never throws; accepted requests have a known verb and no slash in any attribute', () => {
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'apis',
        'v1',
        'apps',
        'namespaces',
        'default',
        'pods',
        'watch',
        'proxy',
        'status',
        'exec',
        'finalize',
        '',
        '.',
        '..',
        '%2F',
        '%2e',
        'a%20b',
        '%',
      ),
      fc.stringMatching(/^[a-z0-9.:%-]{0,6}$/),
    )
    const query = fc.constantFrom(
      '',
      '?watch=1',
      '?watch=maybe',
      '?fieldSelector=metadata.name%3Dx',
      '?a=1;b',
      '?limit=5',
      '?watch=true&watch=1',
    )
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT'),
        fc.array(segment, { maxLength: 9 }),
        query,
        (method, parts, q) => {
          const r = parseRequestInfo(method, '/' + parts.join('/') + q)
          if (!r.ok) return
          assert.ok(
            [
              'get',
              'list',
              'watch',
              'create',
              'update',
              'patch',
              'delete',
              'deletecollection',
              'proxy',
              'head',
              'post',
              'put',
              'options',
            ].includes(r.info.verb),
            r.info.verb,
          )
          for (const v of [r.info.namespace, r.info.resource, r.info.subresource, r.info.apiGroup])
            assert.ok(!v.includes('/') && v !== '.' && v !== '..')
        },
      ),
      { numRuns: 3000 },
    )
  })
})
