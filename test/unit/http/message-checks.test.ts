import assert from 'node:assert/strict'
import { test } from 'node:test'
import { http1MessageProblem } from '../../../src/http/message-checks.ts'

const msg = (httpVersion: string, ...rawHeaders: string[]) => ({ httpVersion, rawHeaders })

test('HTTP/1.1 and HTTP/1.0 requests with one Host pass', () => {
  assert.equal(http1MessageProblem(msg('1.1', 'Host', 'gatehouse', 'Accept', '*/*')), undefined)
  assert.equal(http1MessageProblem(msg('1.0', 'Host', 'gatehouse')), undefined)
  assert.equal(http1MessageProblem(msg('1.0')), undefined, 'HTTP/1.0 needs no Host')
  assert.equal(
    http1MessageProblem(msg('1.1', 'host', 'a', 'Transfer-Encoding', 'chunked')),
    undefined,
  )
})

test('versions llhttp accepts on an HTTP/1 connection but HTTP/1.1 has not (0.9, 2.0) are refused', () => {
  assert.match(http1MessageProblem(msg('0.9', 'Host', 'a')) ?? '', /HTTP\/0\.9 is not spoken/)
  assert.match(http1MessageProblem(msg('2.0', 'Host', 'a')) ?? '', /HTTP\/2\.0 is not spoken/)
})

test('an HTTP/1.1 request without Host, and any with two, are refused (RFC 9112 3.2)', () => {
  assert.match(http1MessageProblem(msg('1.1', 'Accept', '*/*')) ?? '', /must have a Host/)
  assert.match(http1MessageProblem(msg('1.1', 'Host', 'a', 'HOST', 'b')) ?? '', /2 Host fields/)
  assert.match(http1MessageProblem(msg('1.0', 'Host', 'a', 'host', 'a')) ?? '', /2 Host fields/)
})

test('Transfer-Encoding in an HTTP/1.0 request is faulty framing (RFC 9112 6.1)', () => {
  assert.match(
    http1MessageProblem(msg('1.0', 'Transfer-Encoding', 'chunked')) ?? '',
    /HTTP\/1\.0 has no Transfer-Encoding/,
  )
})
