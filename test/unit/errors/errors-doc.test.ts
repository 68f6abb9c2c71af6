// docs/errors.md documents every error code with its HTTP status and reason; drift fails here.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { errorCodes } from '../../../src/errors/index.ts'

const doc = readFileSync(
  join(fileURLToPath(import.meta.url), '../../../../../docs/errors.md'),
  'utf8',
)

test('docs/errors.md lists exactly the codes of src/errors/codes.ts with their status and reason', () => {
  const rows = new Map<string, [number, string]>()
  for (const m of doc.matchAll(/^\|\s*`(GW_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*(\w+)\s*\|/gm))
    rows.set(m[1]!, [Number(m[2]), m[3]!])
  assert.deepEqual([...rows.keys()].sort(), Object.keys(errorCodes).sort())
  for (const [code, { status, reason }] of Object.entries(errorCodes)) {
    assert.deepEqual(rows.get(code), [status, reason], code)
  }
})
