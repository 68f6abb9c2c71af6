// `gatehouse policy test` as a user's CI runs it: the built CLI, spawned, with its exit codes
// (0 every expectation met, 1 an expectation failed or the policies are invalid, 2 usage).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoRoot } from '../../harness/binaries.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const cli = join(repoRoot, 'build', 'src', 'cli', 'main.js')
const examples = join(repoRoot, 'examples', 'policies')

function gatehouse(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: repoRoot })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('the shipped example cases pass against the shipped example policies', () => {
  const r = gatehouse(
    'policy',
    'test',
    '--policies',
    examples,
    '--file',
    join(repoRoot, 'examples', 'policy-tests', 'examples.yaml'),
  )
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /\n(\d+) passed, 0 failed\n$/)
  assert.match(
    r.stdout,
    /DENY +nobody deletes a protected namespace: .*\n +by policy 'protected-namespaces', rule 'never-delete': this namespace is protected/,
  )
})

test('the shipped approvals example keeps its promises (expect: approve)', () => {
  const r = gatehouse(
    'policy',
    'test',
    '--policies',
    join(repoRoot, 'examples', 'approvals'),
    '--file',
    join(repoRoot, 'examples', 'policy-tests', 'approvals.yaml'),
  )
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /\n5 passed, 0 failed\n$/)
  assert.match(
    r.stdout,
    /APPROVE +prod secrets need an approval: .*\n +by policy 'risky-changes', rule 'prod-secret-reads'/,
  )
})

test('a failed expectation exits 1 and says which case and why', () => {
  const dir = tempDir('gh-policy-test-')
  const file = join(dir, 'cases.yaml')
  writeFileSync(
    file,
    [
      'cases:',
      '  - name: scanner reads secrets (it must not)',
      "    identity: { name: 'k8s:serviceaccount:ops:scanner' }",
      '    request: GET /api/v1/namespaces/payments/secrets/db',
      '    expect: allow',
      '  - name: scanner lists pods',
      "    identity: { name: 'k8s:serviceaccount:ops:scanner' }",
      '    request: GET /api/v1/pods',
      '    expect: allow',
    ].join('\n'),
  )
  const r = gatehouse('policy', 'test', '--policies', examples, '--file', file)
  assert.equal(r.code, 1)
  assert.match(
    r.stdout,
    /DENY +scanner reads secrets \(it must not\).*\n +by policy 'scanner', rule 'no-secrets'.*\n +FAIL \(expected allow\)/,
  )
  assert.match(r.stdout, /1 passed, 1 failed/)
})

test('requests on the command line print the decision and the rule', () => {
  const r = gatehouse(
    'policy',
    'test',
    '--policies',
    examples,
    '--identity',
    'k8s:serviceaccount:ops:backup',
    'GET /api/v1/namespaces/payments/secrets',
    'GET /api/v1/secrets',
    'GET /api//v1/pods',
  )
  assert.equal(r.code, 0, r.stderr)
  const blocks = r.stdout.trim().split(/\n(?=\S)/)
  assert.equal(blocks.length, 3, r.stdout)
  assert.match(
    blocks[0]!,
    /^ALLOW +k8s:serviceaccount:ops:backup GET \/api\/v1\/namespaces\/payments\/secrets\n +by policy 'backup-job', rule 'read-only'/,
  )
  assert.match(
    blocks[1]!,
    /^DENY +.*\n +by policy 'no-cluster-wide-secret-list', rule 'all-namespaces-secrets'/,
  )
  // A spelling the gateway refuses before policy is reported as such, not as a decision.
  assert.match(blocks[2]!, /^REFUSED +.*\n +Gatehouse refuses this request before policy: /)
})

test('JSON output carries the whole decision', () => {
  const r = gatehouse(
    'policy',
    'test',
    '--policies',
    examples,
    '--identity',
    'github:octo-org/app',
    '--output',
    'json',
    'DELETE /api/v1/namespaces/prod',
  )
  assert.equal(r.code, 0, r.stderr)
  const line = JSON.parse(r.stdout) as {
    decision: { action: string; policy: string; rule: string }
  }
  assert.equal(line.decision.action, 'deny')
  assert.equal(line.decision.policy, 'protected-namespaces')
  assert.equal(line.decision.rule, 'never-delete')
})

test('an invalid policy exits 1 naming the file, the document and the field', () => {
  const dir = tempDir('gh-policy-bad-')
  writeFileSync(
    join(dir, 'bad.yaml'),
    [
      'apiVersion: gatehouse.dev/v1alpha1',
      'kind: Policy',
      'metadata: { name: bad }',
      'spec:',
      "  subjects: [{ name: '*' }]",
      '  rules:',
      '    - { name: r, action: deny, verbs: [get], resources: [secret] }',
    ].join('\n'),
  )
  const r = gatehouse('policy', 'test', '--policies', dir, '--identity', 'x', 'GET /api/v1/pods')
  assert.equal(r.code, 1)
  assert.match(
    r.stderr,
    /bad\.yaml.*spec\.rules\[0\]\.resources\[0\].*'secret' is a kind in the singular/,
  )
})

test('usage errors exit 2', () => {
  assert.equal(gatehouse('policy', 'test', 'GET /api').code, 2)
  assert.equal(gatehouse('policy', 'test', '--policies', examples, 'GET /api').code, 2)
  const r = gatehouse('policy', 'test', '--policies', examples, '--identity', 'x', 'get pods')
  assert.equal(r.code, 2)
  assert.match(r.stderr, /expected "METHOD \/path\?query"/)
})

test('an APPROVE shows exactly what an approval of the request is bound to', () => {
  const r = gatehouse(
    'policy',
    'test',
    '--policies',
    join(repoRoot, 'examples', 'approvals'),
    '--identity',
    'github:octo-org/app',
    '--issuer',
    'https://token.actions.githubusercontent.com',
    '--claim',
    'repository=octo-org/app',
    'DELETE /api/v1/namespaces/prod?dryRun=All&timeout=30s&propagationPolicy=Foreground',
  )
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /^APPROVE /)
  assert.match(r.stdout, /approval bound to:\n/)
  assert.match(r.stdout, /identity "github:octo-org\/app" groups \[\] cluster "default"/)
  assert.match(r.stdout, /DELETE "\/api\/v1\/namespaces\/prod"/)
  assert.match(r.stdout, /query dryRun="All" propagationPolicy="Foreground"\n/)
  assert.match(r.stdout, /not bound: timeout/)
  const json = gatehouse(
    'policy',
    'test',
    '--policies',
    join(repoRoot, 'examples', 'approvals'),
    '--identity',
    'github:octo-org/app',
    '--issuer',
    'https://token.actions.githubusercontent.com',
    '--claim',
    'repository=octo-org/app',
    '--output',
    'json',
    'DELETE /api/v1/namespaces/prod',
  )
  const line = JSON.parse(json.stdout) as { binding: { method: string; path: string } }
  assert.deepEqual([line.binding.method, line.binding.path], ['DELETE', '/api/v1/namespaces/prod'])
})
