import assert from 'node:assert/strict'
import { test } from 'node:test'
import { forwardableHeaders, relayableResponseHeaders } from '../../../src/upstream/headers.ts'
import {
  encodeExtraKey,
  impersonationHeaders,
  reservedNameProblem,
} from '../../../src/upstream/impersonation.ts'

const pairs = (flat: string[]): [string, string][] => {
  const out: [string, string][] = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}

test('caller credentials and every Impersonate-* header are never forwarded', () => {
  const out = forwardableHeaders(
    [
      'Authorization',
      'Bearer secret',
      'Impersonate-User',
      'admin',
      'impersonate-group',
      'system:masters',
      'Impersonate-Extra-scopes',
      'x',
      'Impersonate-Uid',
      '1',
      'X-Remote-User',
      'admin',
      'X-Remote-Extra-Foo',
      'bar',
      'Audit-ID',
      'client-chosen',
      'Host',
      'gatehouse:8443',
      'Accept',
      'application/json',
      'User-Agent',
      'kubectl/v1.32',
    ],
    false,
  )
  assert.deepEqual(pairs(out), [
    ['Accept', 'application/json'],
    ['User-Agent', 'kubectl/v1.32'],
  ])
})

test('hop-by-hop headers are dropped for ordinary requests but Upgrade survives for upgrades', () => {
  const raw = [
    'Connection',
    'Upgrade',
    'Upgrade',
    'SPDY/3.1',
    'X-Stream-Protocol-Version',
    'v4.channel.k8s.io',
    'X-Stream-Protocol-Version',
    'v3.channel.k8s.io',
    'Keep-Alive',
    '5',
    'TE',
    'trailers',
  ]
  assert.deepEqual(pairs(forwardableHeaders(raw, false)), [
    ['X-Stream-Protocol-Version', 'v4.channel.k8s.io'],
    ['X-Stream-Protocol-Version', 'v3.channel.k8s.io'],
  ])
  assert.deepEqual(pairs(forwardableHeaders(raw, true)), [
    ['Connection', 'Upgrade'],
    ['Upgrade', 'SPDY/3.1'],
    ['X-Stream-Protocol-Version', 'v4.channel.k8s.io'],
    ['X-Stream-Protocol-Version', 'v3.channel.k8s.io'],
  ])
})

test('headers named in Connection are hop-by-hop too', () => {
  assert.deepEqual(
    pairs(
      forwardableHeaders(
        ['Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1', 'Accept', '*/*'],
        false,
      ),
    ),
    [['Accept', '*/*']],
  )
})

test('the WebSocket bearer subprotocol is removed from the offered list', () => {
  const out = forwardableHeaders(
    [
      'Sec-WebSocket-Protocol',
      'base64url.bearer.authorization.k8s.io.dG9rZW4, v5.channel.k8s.io, v4.channel.k8s.io',
    ],
    true,
  )
  assert.deepEqual(pairs(out), [['Sec-WebSocket-Protocol', 'v5.channel.k8s.io, v4.channel.k8s.io']])
  assert.deepEqual(
    forwardableHeaders(
      ['Sec-WebSocket-Protocol', 'base64url.bearer.authorization.k8s.io.dG9rZW4'],
      true,
    ),
    [],
  )
})

test('response hop-by-hop headers are not relayed', () => {
  assert.deepEqual(
    relayableResponseHeaders({
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive',
      warning: ['299 - "a"', '299 - "b"'],
    }),
    {
      'content-type': 'application/json',
      warning: ['299 - "a"', '299 - "b"'],
    },
  )
})

test('impersonation headers carry user, groups and percent-encoded extra keys', () => {
  const out = impersonationHeaders({
    user: 'github:acme/api@refs/heads/main',
    groups: ['ci', 'gatehouse:authenticated'],
    extra: { 'gatehouse.dev/repository': ['acme/api'], 'gatehouse.dev/run_id': ['42'] },
  })
  assert.deepEqual(pairs(out), [
    ['Impersonate-User', 'github:acme/api@refs/heads/main'],
    ['Impersonate-Group', 'ci'],
    ['Impersonate-Group', 'gatehouse:authenticated'],
    ['Impersonate-Extra-gatehouse.dev%2Frepository', 'acme/api'],
    ['Impersonate-Extra-gatehouse.dev%2Frun_id', '42'],
  ])
})

test('extra keys are lowercased and non-token characters encoded; unsafe values are dropped, not injected', () => {
  assert.equal(encodeExtraKey('Acme.COM/Project Name'), 'acme.com%2Fproject%20name')
  const out = impersonationHeaders({
    user: 'bot',
    groups: ['ok', 'bad\r\nInjected: yes'],
    extra: { k: ['fine', 'new\nline', ''] },
  })
  assert.deepEqual(pairs(out), [
    ['Impersonate-User', 'bot'],
    ['Impersonate-Group', 'ok'],
    ['Impersonate-Extra-k', 'fine'],
  ])
  assert.throws(() => impersonationHeaders({ user: 'a\nb', groups: [], extra: {} }), TypeError)
})

test('reserved system: names from token claims are refused; service-account names are not', () => {
  assert.equal(
    reservedNameProblem({ user: 'github:acme/api@refs/heads/main', groups: ['ci'] }),
    undefined,
  )
  assert.equal(
    reservedNameProblem({
      user: 'system:serviceaccount:ci:deployer',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated'],
    }),
    undefined,
  )
  assert.match(
    reservedNameProblem({ user: 'bot', groups: ['system:masters'] }) ?? '',
    /group 'system:masters' is reserved/,
  )
  assert.match(
    reservedNameProblem({ user: 'system:admin', groups: [] }) ?? '',
    /identity name 'system:admin' is reserved/,
  )
  assert.match(
    reservedNameProblem({ user: 'system:kube-controller-manager', groups: [] }) ?? '',
    /reserved/,
  )
  assert.match(reservedNameProblem({ user: 'x', groups: ['system:nodes'] }) ?? '', /reserved/)
})

test('Expect is never forwarded: Gatehouse met it (100 Continue, the body read whole) and undici refuses to send it', () => {
  const out = pairs(
    forwardableHeaders(
      ['Expect', '100-continue', 'Content-Type', 'application/json', 'expect', '100-Continue'],
      false,
    ),
  )
  assert.deepEqual(out, [['Content-Type', 'application/json']])
})
