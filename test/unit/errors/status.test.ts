import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GatewayError, rawStatusResponse, toKubeStatus } from '../../../src/errors/index.ts'

test('a GatewayError becomes a Status whose code equals the HTTP status, detail kept private', () => {
  const err = new GatewayError('GW_AUTHN_INVALID_TOKEN', 'Unauthorized', {
    detail: 'token expired at 12:00',
  })
  const status = toKubeStatus(err, 'req-1')
  assert.deepEqual(status, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Unauthorized (gatehouse request id req-1)',
    reason: 'Unauthorized',
    code: 401,
  })
  assert.ok(!JSON.stringify(status).includes('expired'))
})

test('raw responses for upgrade sockets are complete HTTP/1.1 messages', () => {
  const raw = rawStatusResponse(toKubeStatus(new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'down')), {
    'Audit-ID': 'x',
  })
  const [head, body] = raw.split('\r\n\r\n')
  assert.match(head!, /^HTTP\/1\.1 503 ServiceUnavailable\r\n/)
  assert.match(head!, /\r\nContent-Length: \d+/)
  assert.match(head!, /\r\nAudit-ID: x$/)
  assert.equal((JSON.parse(body!) as { code: number }).code, 503)
  assert.equal(Number(/Content-Length: (\d+)/.exec(head!)![1]), Buffer.byteLength(body!))
})
