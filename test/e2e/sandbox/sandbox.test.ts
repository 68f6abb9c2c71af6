// The README's first command ends in a running sandbox: run it in smoke mode (start everything,
// use each example identity once, stop) exactly as `npm start` runs it.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoRoot } from '../../harness/binaries.ts'
import { tempDir } from '../../harness/temp-dir.ts'

test('npm start: the sandbox comes up, its identities work through Gatehouse, and it stops cleanly', async () => {
  const dir = tempDir('gatehouse-sandbox-')
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'build', 'scripts', 'sandbox.js'), '--smoke'],
    {
      env: { ...process.env, GATEHOUSE_SANDBOX_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  assert.equal(code, 0, out)
  assert.match(
    out,
    /smoke: ci-deployer lists pods: pod\/web; backup-job may not delete: .*forbidden/i,
  )
  assert.deepEqual(
    readdirSync(join(dir, 'kubeconfigs'))
      .filter((f) => f.endsWith('.kubeconfig'))
      .sort(),
    ['backup-job.kubeconfig', 'ci-deployer.kubeconfig'],
  )
})
