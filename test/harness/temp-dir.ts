// Temporary directories for tests, removed when their test (or their test file) ends. A failed
// test's directory is kept, and its path printed, only when GATEHOUSE_KEEP_FAILED=1.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, type TestContext } from 'node:test'
import { KEEP_FAILED_ENV, TEMP_PREFIXES } from './temp-folder.ts'

let failures = 0
// Registered on the file's root when a test file imports this module: every test and subtest
// of the file passes through it, so `failures` counts the file's failed tests so far. Not in
// other processes that use the harness (npm start's sandbox), which must not become test runs.
const underTest =
  process.env['NODE_TEST_CONTEXT'] !== undefined || /\.test\.js$/.test(process.argv[1] ?? '')
if (underTest)
  afterEach((t) => {
    if (failed(t)) failures++
  })

const fileScoped = new Set<string>()
process.once('exit', () => {
  for (const dir of fileScoped) removeOrKeep(dir, failures > 0)
})

/** `passed` is on test contexts since Node 20.14 (not yet in @types/node 20). */
function failed(t: object): boolean {
  return (t as { passed?: boolean }).passed === false
}

function removeOrKeep(dir: string, failed: boolean): void {
  if (failed && process.env[KEEP_FAILED_ENV] === '1') {
    process.stderr.write(`[harness] kept the failed test's directory ${dir}\n`)
    return
  }
  rmSync(dir, { recursive: true, force: true })
}

/**
 * A new directory `<tmp>/<prefix>XXXXXX`. With `t`, it is removed after that test; without,
 * when the test file's process exits (after every hook, once Gatehouse instances and child
 * processes of the file are stopped).
 */
export function tempDir(prefix: string, t?: TestContext): string {
  if (!TEMP_PREFIXES.some((p) => prefix.startsWith(p)))
    throw new Error(`temp dir prefix ${prefix} must start with one of ${TEMP_PREFIXES.join(', ')}`)
  const dir = mkdtempSync(join(tmpdir(), prefix))
  if (t) {
    const before = failures
    t.after(() => removeOrKeep(dir, failed(t) || failures > before))
  } else fileScoped.add(dir)
  return dir
}
