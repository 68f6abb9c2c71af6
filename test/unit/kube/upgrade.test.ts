// Which requests may switch protocols: one row per shape (issue 18 item 1).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkUpgrade } from '../../../src/kube/upgrade.ts'

const pod = (subresource: string, name = 'box') => ({
  isResourceRequest: true,
  apiGroup: '',
  resource: 'pods',
  subresource,
  name,
})
const headers = (upgrade: string, ...more: string[]): string[] => [
  'Connection',
  'Upgrade',
  'Upgrade',
  upgrade,
  ...more,
]

const rows: [string, Parameters<typeof checkUpgrade>[0], string | true][] = [
  ['WebSocket exec', { method: 'GET', info: pod('exec'), rawHeaders: headers('websocket') }, true],
  [
    'SPDY exec (POST)',
    { method: 'POST', info: pod('exec'), rawHeaders: headers('SPDY/3.1') },
    true,
  ],
  [
    'SPDY attach (GET)',
    { method: 'GET', info: pod('attach'), rawHeaders: headers('spdy/3.1') },
    true,
  ],
  [
    'WebSocket port-forward',
    { method: 'GET', info: pod('portforward'), rawHeaders: headers('WebSocket') },
    true,
  ],
  [
    'a ConfigMap GET',
    {
      method: 'GET',
      info: {
        isResourceRequest: true,
        apiGroup: '',
        resource: 'configmaps',
        subresource: '',
        name: 'c',
      },
      rawHeaders: headers('websocket'),
    },
    'not an exec, attach or port-forward',
  ],
  [
    'pods/proxy',
    { method: 'GET', info: pod('proxy'), rawHeaders: headers('websocket') },
    'not an exec',
  ],
  [
    'pods/log',
    { method: 'GET', info: pod('log'), rawHeaders: headers('websocket') },
    'not an exec',
  ],
  [
    'a pod list',
    { method: 'GET', info: pod('exec', ''), rawHeaders: headers('websocket') },
    'not an exec',
  ],
  [
    'a non-resource path',
    {
      method: 'GET',
      info: { isResourceRequest: false, apiGroup: '', resource: '', subresource: '', name: '' },
      rawHeaders: headers('websocket'),
    },
    'not an exec',
  ],
  [
    'h2c',
    { method: 'GET', info: pod('exec'), rawHeaders: headers('h2c') },
    'not a protocol Gatehouse speaks',
  ],
  [
    'two protocols',
    { method: 'GET', info: pod('exec'), rawHeaders: headers('websocket, h2c') },
    'got 2',
  ],
  [
    'two Upgrade headers',
    { method: 'GET', info: pod('exec'), rawHeaders: headers('websocket', 'Upgrade', 'SPDY/3.1') },
    'got 2',
  ],
  [
    'WebSocket with POST',
    { method: 'POST', info: pod('exec'), rawHeaders: headers('websocket') },
    'is a GET',
  ],
  [
    'SPDY with PUT',
    { method: 'PUT', info: pod('exec'), rawHeaders: headers('SPDY/3.1') },
    'POST or a GET',
  ],
  [
    'a body',
    { method: 'POST', info: pod('exec'), rawHeaders: headers('SPDY/3.1', 'Content-Length', '12') },
    'carries no body',
  ],
  [
    'a chunked body',
    {
      method: 'POST',
      info: pod('exec'),
      rawHeaders: headers('SPDY/3.1', 'Transfer-Encoding', 'chunked'),
    },
    'carries no body',
  ],
  [
    'Content-Length 0',
    { method: 'POST', info: pod('exec'), rawHeaders: headers('SPDY/3.1', 'Content-Length', '0') },
    true,
  ],
]

for (const [name, input, expected] of rows) {
  test(`upgrade: ${name}`, () => {
    const v = checkUpgrade(input)
    if (expected === true) assert.equal(v.ok, true, JSON.stringify(v))
    else {
      assert.equal(v.ok, false)
      assert.match(v.ok ? '' : v.reason, new RegExp(expected))
    }
  })
}
