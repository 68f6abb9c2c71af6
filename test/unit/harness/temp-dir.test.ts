// The tests' temporary directories: a test file that passes leaves nothing in the temp folder,
// one that fails leaves nothing either unless GATEHOUSE_KEEP_FAILED=1, and then exactly the
// failed tests' directories (per test) or the failed file's (file-scoped), with their paths printed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { tempDir } from '../../harness/temp-dir.ts'

const helper = pathToFileURL(join(import.meta.dirname, '..', '..', 'harness', 'temp-dir.js')).href

/** A test file: a file-scoped dir, and one per test `ok` (passes) and `bad` (fails when asked). */
const fixture = (log: string): string => `
import { appendFileSync } from 'node:fs'
import { test } from 'node:test'
import { tempDir } from '${helper}'
const note = (name, dir) => appendFileSync(${JSON.stringify(log)}, name + ' ' + dir + '\\n')
note('file', tempDir('gh-file-'))
test('ok', (t) => note('ok', tempDir('gh-ok-', t)))
test('bad', (t) => {
  note('bad', tempDir('gh-bad-', t))
  if (process.env.FAIL === '1') throw new Error('failing on purpose')
})
`

async function runFixture(env: Record<string, string>): Promise<{
  code: number | null
  out: string
  dirs: Record<string, string>
  left: string[]
}> {
  const root = tempDir('gh-tempdir-test-')
  const tmp = join(root, 'tmp')
  mkdirSync(tmp)
  const log = join(root, 'dirs.log')
  const file = join(root, 'fixture.test.mjs')
  writeFileSync(file, fixture(log))
  // a test run of its own, not a subtest of this file's run (which NODE_TEST_CONTEXT would say)
  const outer = { ...process.env }
  delete outer['NODE_TEST_CONTEXT']
  const child = spawn(process.execPath, ['--test', '--test-reporter=spec', file], {
    env: { ...outer, TMPDIR: tmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const dirs = Object.fromEntries(
    readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  )
  return { code, out, dirs, left: readdirSync(tmp).sort() }
}

test('a passing file leaves nothing, GATEHOUSE_KEEP_FAILED or not', async () => {
  for (const keep of ['0', '1']) {
    const r = await runFixture({ GATEHOUSE_KEEP_FAILED: keep })
    assert.equal(r.code, 0, r.out)
    assert.deepEqual(Object.keys(r.dirs).sort(), ['bad', 'file', 'ok'])
    assert.deepEqual(r.left, [], r.out)
  }
})

test('a failing file leaves nothing unless GATEHOUSE_KEEP_FAILED=1', async () => {
  const r = await runFixture({ FAIL: '1' })
  assert.equal(r.code, 1, r.out)
  assert.deepEqual(r.left, [], r.out)
  assert.doesNotMatch(r.out, /kept the failed test's directory/)
})

test('GATEHOUSE_KEEP_FAILED=1 keeps the failed test and its file, prints their paths, removes the rest', async () => {
  const r = await runFixture({ FAIL: '1', GATEHOUSE_KEEP_FAILED: '1' })
  assert.equal(r.code, 1, r.out)
  assert.ok(!existsSync(r.dirs['ok']!), 'the passing test’s directory is removed')
  for (const kept of [r.dirs['bad']!, r.dirs['file']!]) {
    assert.ok(existsSync(kept), `${kept} kept`)
    assert.ok(r.out.includes(`kept the failed test's directory ${kept}`), r.out)
  }
  assert.equal(r.left.length, 2)
})

test('a prefix run-tests.ts does not look for is refused', () => {
  assert.throws(() => tempDir('scratch-'), /must start with one of gatehouse-, gh-, gw-/)
})
