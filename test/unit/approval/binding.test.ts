// What an approval is bound to: every swap of the issue (exec command, container, tty, stdin;
// proxy subpath and method; dryRun; a deletecollection's selectors; apply's force and field
// manager; the content type; the body) is another binding, while spellings the API server reads
// the same (escapes, `+`, the order of distinct keys, WebSocket GET vs SPDY POST for exec, the
// request timeout) are the same binding.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bindingKey, boundRequest } from '../../../src/approval/binding.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'

const who = { name: 'human:bob', groups: ['dev'], extra: {} }

function key(
  method: string,
  target: string,
  opts: { contentType?: string; body?: string; groups?: string[] } = {},
): string {
  const r = parseRequestInfo(method, target)
  assert.ok(r.ok, target)
  return bindingKey(
    boundRequest({
      identity: { ...who, groups: opts.groups ?? who.groups },
      cluster: 'prod',
      method,
      info: r.info,
      target,
      contentType: opts.contentType ?? '',
      body: opts.body === undefined ? undefined : Buffer.from(opts.body),
    }),
  )
}

const EXEC = '/api/v1/namespaces/ns/pods/box/exec?command=ls&command=%2F&container=app&stdout=true'

describe('request binding', () => {
  const differ: [string, [string, string, object?], [string, string, object?]][] = [
    ['exec command', ['POST', EXEC], ['POST', EXEC.replace('command=ls', 'command=echo')]],
    [
      'exec argv order',
      ['POST', EXEC],
      ['POST', EXEC.replace('command=ls&command=%2F', 'command=%2F&command=ls')],
    ],
    ['exec container', ['POST', EXEC], ['POST', EXEC.replace('container=app', 'container=side')]],
    ['exec tty', ['POST', EXEC], ['POST', `${EXEC}&tty=true`]],
    ['exec stdin', ['POST', EXEC], ['POST', `${EXEC}&stdin=true`]],
    [
      'proxy subpath and method',
      ['GET', '/api/v1/nodes/n/proxy/healthz'],
      ['POST', '/api/v1/nodes/n/proxy/run/ns/pod/c?cmd=id'],
    ],
    [
      'proxy method alone',
      ['GET', '/api/v1/nodes/n/proxy/healthz'],
      ['POST', '/api/v1/nodes/n/proxy/healthz'],
    ],
    [
      'proxy query spelling (the backend parses it, not Go)',
      ['GET', '/api/v1/nodes/n/proxy/x?a=1&b=2'],
      ['GET', '/api/v1/nodes/n/proxy/x?b=2&a=1'],
    ],
    [
      'dryRun',
      ['DELETE', '/api/v1/namespaces/p/configmaps/victim?dryRun=All'],
      ['DELETE', '/api/v1/namespaces/p/configmaps/victim'],
    ],
    [
      'deletecollection selector',
      ['DELETE', '/api/v1/namespaces/p/configmaps?labelSelector=app%3Da'],
      ['DELETE', '/api/v1/namespaces/p/configmaps?labelSelector=app%3Db'],
    ],
    [
      'deletecollection without its selector',
      ['DELETE', '/api/v1/namespaces/p/configmaps?labelSelector=app%3Da'],
      ['DELETE', '/api/v1/namespaces/p/configmaps'],
    ],
    [
      'apply force',
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c?fieldManager=kubectl',
        { contentType: 'application/apply-patch+yaml', body: 'x' },
      ],
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c?fieldManager=kubectl&force=true',
        { contentType: 'application/apply-patch+yaml', body: 'x' },
      ],
    ],
    [
      'field manager',
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c?fieldManager=a',
        { contentType: 'application/apply-patch+yaml', body: 'x' },
      ],
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c?fieldManager=b',
        { contentType: 'application/apply-patch+yaml', body: 'x' },
      ],
    ],
    [
      'patch type (Content-Type)',
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c',
        { contentType: 'application/merge-patch+json', body: '{}' },
      ],
      [
        'PATCH',
        '/api/v1/namespaces/p/configmaps/c',
        { contentType: 'application/strategic-merge-patch+json', body: '{}' },
      ],
    ],
    [
      'body',
      [
        'POST',
        '/api/v1/namespaces/p/configmaps',
        { contentType: 'application/json', body: '{"a":1}' },
      ],
      [
        'POST',
        '/api/v1/namespaces/p/configmaps',
        { contentType: 'application/json', body: '{"a":2}' },
      ],
    ],
    [
      'groups',
      ['GET', '/api/v1/namespaces/p/secrets/s'],
      ['GET', '/api/v1/namespaces/p/secrets/s', { groups: ['dev', 'admins'] }],
    ],
    [
      'list limit',
      ['GET', '/api/v1/namespaces/p/secrets?limit=1'],
      ['GET', '/api/v1/namespaces/p/secrets?limit=500'],
    ],
  ]
  for (const [name, a, b] of differ)
    it(`binds ${name}`, () => assert.notEqual(key(...a), key(...b)))

  const same: [string, [string, string, object?], [string, string, object?]][] = [
    ['percent-escapes and +', ['POST', EXEC], ['POST', EXEC.replace('command=ls', 'command=%6Cs')]],
    [
      'the order of distinct keys',
      ['POST', EXEC],
      [
        'POST',
        '/api/v1/namespaces/ns/pods/box/exec?container=app&command=ls&stdout=true&command=%2F',
      ],
    ],
    ['exec over WebSocket (GET) and SPDY (POST)', ['GET', EXEC], ['POST', EXEC]],
    [
      'the request timeout',
      ['DELETE', '/api/v1/namespaces/p/configmaps/victim'],
      ['DELETE', '/api/v1/namespaces/p/configmaps/victim?timeout=30s'],
    ],
    [
      'a Content-Type header on a request without a body',
      ['GET', EXEC],
      ['GET', EXEC, { contentType: 'application/json' }],
    ],
    [
      'Content-Type case and spaces',
      [
        'POST',
        '/api/v1/namespaces/p/configmaps',
        { contentType: 'application/json; charset=utf-8', body: '{}' },
      ],
      [
        'POST',
        '/api/v1/namespaces/p/configmaps',
        { contentType: 'Application/JSON;charset=UTF-8', body: '{}' },
      ],
    ],
  ]
  for (const [name, a, b] of same)
    it(`reads ${name} as the API server does`, () => assert.equal(key(...a), key(...b)))

  it('says what it leaves out', () => {
    const r = parseRequestInfo('DELETE', '/api/v1/namespaces/p/configmaps/v?timeout=3s&dryRun=All')
    assert.ok(r.ok)
    const b = boundRequest({
      identity: who,
      cluster: 'prod',
      method: 'DELETE',
      info: r.info,
      target: '/api/v1/namespaces/p/configmaps/v?timeout=3s&dryRun=All',
      contentType: '',
      body: undefined,
    })
    assert.deepEqual(b.unbound, ['timeout'])
    assert.deepEqual(b.query, [['dryRun', ['All']]])
    assert.equal(b.method, 'DELETE')
  })
})
