import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config/index.ts'
import { tempDir } from '../../harness/temp-dir.ts'

function write(text: string): string {
  const file = join(tempDir('gh-cfg-'), 'gatehouse.yaml')
  writeFileSync(file, text)
  return file
}

const valid = `apiVersion: gatehouse.dev/v1alpha1
kind: GatewayConfig
authentication:
  authenticators:
    - oidc: { issuer: https://token.actions.githubusercontent.com, audiences: [gatehouse], preset: github-actions }
clusters:
  - name: prod
    default: true
    server: https://10.0.0.1:6443
    caFile: ca.crt
    credential: { tokenFile: gatehouse.token }
`

function problems(text: string): string[] {
  const file = write(text)
  try {
    loadConfig(file)
  } catch (e) {
    assert.ok(e instanceof ConfigError)
    for (const p of e.problems) assert.ok(p.startsWith(`${file}: `), `names the file: ${p}`)
    return e.problems.map((p) => p.slice(file.length + 2))
  }
  assert.fail('expected a ConfigError')
}

describe('gatehouse.yaml', () => {
  test('a valid file loads, with paths resolved next to it and defaults filled in', () => {
    const file = write(valid)
    const config = loadConfig(file)
    assert.equal(config.clusters[0]!.caFile, join(file, '..', 'ca.crt'))
    assert.equal(config.clusters[0]!.credential.tokenFile, join(file, '..', 'gatehouse.token'))
    assert.equal(config.clusters[0]!.forwarding.mode, 'impersonate')
    assert.equal(config.listen.port, 8443)
  })

  test('every problem is reported with its path and what is expected', () => {
    const got = problems(
      valid
        .replace('audiences: [gatehouse]', 'audiences: []')
        .replace('tokenFile: gatehouse.token', 'tokenFile: a, tokenEnv: B')
        .replace('name: prod', 'name: Prod')
        .replace('kind: GatewayConfig', 'kind: GatewayConfig\nlisten: { port: 70000, bogus: 1 }'),
    )
    assert.deepEqual(got.sort(), [
      'authentication.authenticators[0].oidc.audiences: expected at least one audience (for example gatehouse)',
      'clusters[0].credential: expected exactly one of kubeconfig, inCluster, tokenFile, tokenEnv, clientCertificate, got tokenFile and tokenEnv',
      'clusters[0].name: expected a DNS label (lowercase letters, digits, -)',
      'listen.port: Too big: expected number to be <=65535',
      "listen: unknown field(s) 'bogus'",
    ])
  })

  test('cross references: tokenReview cluster, duplicate names, mapped ServiceAccount', () => {
    const got = problems(
      valid
        .replace('    - oidc:', '    - tokenReview: { cluster: staging }\n    - oidc:')
        .concat(
          '  - name: prod\n    server: https://10.0.0.2:6443\n    credential: { tokenEnv: T }\n    forwarding: { mode: serviceAccountToken }\n',
        ),
    )
    assert.deepEqual(got.sort(), [
      "authentication.authenticators[0].tokenReview.cluster: no cluster named 'staging' (clusters: prod, prod)",
      'clusters[1].forwarding.serviceAccount: required when mode is serviceAccountToken (namespace and name)',
      "clusters[1].name: cluster name 'prod' is used twice",
    ])
  })

  test('YAML syntax errors and a missing GatewayConfig document are named', () => {
    assert.match(problems('kind: [unclosed')[0]!, /Flow sequence|flow collection|Missing/i)
    assert.deepEqual(problems('kind: Policy\n'), [
      'expected exactly one document with kind: GatewayConfig, found 0',
    ])
  })
})

test('docs/gatehouse.schema.json is the JSON Schema generated from the validating schema', async () => {
  const { readFileSync } = await import('node:fs')
  const { configJsonSchema } = await import('../../../src/config/index.ts')
  const { repoRoot } = await import('../../harness/binaries.ts')
  const committed = readFileSync(join(repoRoot, 'docs', 'gatehouse.schema.json'), 'utf8')
  assert.equal(
    committed,
    configJsonSchema(),
    'regenerate with: node build/src/cli/main.js schema > docs/gatehouse.schema.json',
  )
  const schema = JSON.parse(committed) as {
    properties: Record<string, unknown>
    required: string[]
  }
  assert.ok(schema.properties['clusters'] && schema.required.includes('authentication'))
})
