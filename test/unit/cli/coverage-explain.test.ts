// The CLI explains what deny rules cover: `check-config` lists it per rule, `policy test` says
// why a rule decided a request it does not spell out (the built CLI, spawned).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { repoRoot } from '../../harness/binaries.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const cli = join(repoRoot, 'build', 'src', 'cli', 'main.js')

function gatehouse(cwd: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd })
  return { code: r.status, out: r.stdout + r.stderr }
}

function setup(): string {
  const dir = tempDir('gatehouse-coverage-cli-')
  writeFileSync(
    join(dir, 'policies.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: everything, action: allow, verbs: ['*']}
    - {name: payments-secrets, action: deny, verbs: [get], resources: [secrets], namespaces: [payments], collections: filter}
    - {name: prod-config, action: deny, verbs: [delete], resources: [configmaps], names: [prod]}
`,
  )
  writeFileSync(
    join(dir, 'gatehouse.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: GatewayConfig
dataDir: ${join(dir, 'data')}
listen: {address: 127.0.0.1, port: 8443}
authentication:
  authenticators:
    - oidc: {issuer: 'https://issuer.example', audiences: [gatehouse], preset: github-actions}
clusters:
  - {name: prod, default: true, server: 'https://127.0.0.1:6443', credential: {tokenFile: token}}
policies: {paths: [policies.yaml]}
`,
  )
  return dir
}

test('check-config lists what each deny rule covers beyond its spelling', () => {
  const dir = setup()
  const r = gatehouse(dir, 'check-config', '--config', join(dir, 'gatehouse.yaml'))
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /deny p\/payments-secrets also covers:\n +- also the verbs list, watch/)
  assert.match(r.out, /lists and watches across all namespaces: answered without those objects/)
  assert.match(r.out, /deny p\/prod-config also covers:\n +- also the verbs deletecollection/)
})

test('policy test says why a rule covers a request, and when a list is filtered', () => {
  const dir = setup()
  const r = gatehouse(
    dir,
    'policy',
    'test',
    '--policies',
    join(dir, 'policies.yaml'),
    '--identity',
    'bot',
    'DELETE /api/v1/namespaces/a/configmaps',
    'GET /api/v1/secrets',
  )
  assert.equal(r.code, 0, r.out)
  assert.match(
    r.out,
    /DENY +bot DELETE \/api\/v1\/namespaces\/a\/configmaps\n +by policy 'p', rule 'prod-config'\n +covered: deletecollection reads or changes what delete name; a request without a name reaches prod/,
  )
  assert.match(
    r.out,
    /ALLOW +bot GET \/api\/v1\/secrets\n.*\n +filtered: the response leaves out what p\/payments-secrets protect/,
  )
})
