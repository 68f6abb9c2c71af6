import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { parse } from 'yaml'
import { authnConfigSchema, PROVENANCE_KEYS, PROVENANCE_PREFIX } from '../../../src/authn/index.ts'
import { repoRoot } from '../../harness/binaries.ts'

const oidc = (extra: Record<string, unknown>): unknown => ({
  authenticators: [
    { oidc: { issuer: 'https://issuer.example', audiences: ['gatehouse'], ...extra } },
  ],
})

function problems(input: unknown): string {
  const r = authnConfigSchema.safeParse(input)
  assert.equal(r.success, false, 'must be refused')
  return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n')
}

describe('authentication configuration', () => {
  test('HMAC and none are refused as algorithms', () => {
    assert.match(problems(oidc({ algorithms: ['RS256', 'HS256'] })), /only asymmetric algorithms/)
    assert.match(problems(oidc({ algorithms: ['none'] })), /never none or HS/)
  })
  test('an audience is required', () => {
    assert.match(problems(oidc({ audiences: [] })), /at least one audience/)
  })
  test('issuers must be https', () => {
    assert.match(problems(oidc({ issuer: 'http://issuer.example' })), /https/)
  })
  test('static tokens need the explicit insecure flag', () => {
    assert.match(
      problems({ authenticators: [{ staticTokens: { file: 'tokens.csv' } }] }),
      /for local development only/,
    )
    assert.ok(
      authnConfigSchema.safeParse({
        authenticators: [{ staticTokens: { file: 'tokens.csv', insecureAllowStaticTokens: true } }],
      }).success,
    )
  })
  test('extra claim mappings are limited to keys Gatehouse RBAC grants', () => {
    assert.match(
      problems(oidc({ claimMappings: { extra: { 'example.com/team': 'team' } } })),
      /extra keys must be one of/,
    )
  })
  test('unknown keys are refused', () => {
    assert.match(problems(oidc({ audience: 'gatehouse' })), /Unrecognized key/)
  })

  for (const file of ['impersonate.yaml', 'impersonate-constrained.yaml']) {
    test(`deploy/rbac/${file} grants exactly the provenance keys Gatehouse sends`, () => {
      const docs = readFileSync(join(repoRoot, 'deploy', 'rbac', file), 'utf8')
        .split(/^---$/m)
        .map((d) => parse(d) as { kind?: string; rules?: { resources?: string[] }[] })
      const role = docs.find((d) => d.kind === 'ClusterRole')!
      const granted = role
        .rules!.flatMap((r) => r.resources ?? [])
        .filter((r) => r.startsWith('userextras/'))
        .map((r) => r.slice('userextras/'.length))
        .sort()
      assert.deepEqual(granted, PROVENANCE_KEYS.map((k) => PROVENANCE_PREFIX + k).sort())
    })
  }
})
