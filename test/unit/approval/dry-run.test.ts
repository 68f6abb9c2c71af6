// The dry run Gatehouse sends to show approvers what a request would do must never do it: the
// API server reads a DELETE's options from its body alone when there is one (the query's
// dryRun=All is then ignored), so the body is marked dryRun, or no dry run is sent at all.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { dryRunBody } from '../../../src/approval/dry-run.ts'

describe('the dry run of a request', () => {
  it("marks a DELETE's DeleteOptions body as a dry run", () => {
    const body = Buffer.from(
      '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}',
    )
    assert.deepEqual(JSON.parse(dryRunBody('DELETE', body)!.toString()), {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      propagationPolicy: 'Background',
      dryRun: ['All'],
    })
    assert.deepEqual(JSON.parse(dryRunBody('DELETE', Buffer.from('{"dryRun":[]}'))!.toString()), {
      dryRun: ['All'],
    })
  })

  it('sends none for a DELETE body it cannot mark (protobuf, YAML, not an object)', () => {
    for (const b of ['k8s\u0000\n\u0002v1', 'kind: DeleteOptions', '[]', 'null'])
      assert.equal(dryRunBody('DELETE', Buffer.from(b)), undefined, b)
  })

  it('keeps other bodies as they are (their dryRun is in the query) and sends no body for none', () => {
    const object = Buffer.from('{"kind":"ConfigMap"}')
    assert.equal(dryRunBody('POST', object), object)
    assert.equal(dryRunBody('DELETE', undefined), null)
    assert.equal(dryRunBody('DELETE', Buffer.alloc(0)), null)
  })
})
