// Building blocks for policy unit tests: policies from YAML text, identities, requests.
import type { Identity } from '../../../src/authn/index.ts'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { selectorFactsOf } from '../../../src/kube/scope.ts'
import { parsePolicyText, PolicySet, type Decision } from '../../../src/policy/index.ts'

export function policySet(yamlText: string): PolicySet {
  const { policies, problems } = parsePolicyText(yamlText, 'test.yaml')
  if (problems.length) throw new Error(problems.join('\n'))
  return new PolicySet(policies)
}

export function identity(name: string, more: Partial<Identity> = {}): Identity {
  return { name, groups: [], method: 'oidc', claims: {}, extra: {}, ...more }
}

export const CI = identity('github:octo-org/app', {
  groups: ['github:octo-org', 'github:ci'],
  issuer: 'https://token.actions.githubusercontent.com',
  subject: 'repo:octo-org/app:ref:refs/heads/main',
  claims: { repository: 'octo-org/app', ref: 'refs/heads/main', run_id: '42' },
})

export function decide(
  set: PolicySet,
  who: Identity,
  method: string,
  url: string,
  opts: { cluster?: string; object?: unknown; patchType?: string } = {},
): Decision {
  const r = parseRequestInfo(method, url)
  if (!r.ok) throw new Error(`unclassifiable test request ${method} ${url}: ${r.reason}`)
  return set.evaluate({
    cluster: opts.cluster ?? 'prod',
    info: r.info,
    identity: who,
    selector: selectorFactsOf(r.info.query),
    ...(opts.patchType ? { patchType: opts.patchType } : {}),
    ...(opts.object !== undefined ? { object: () => ({ value: opts.object }) } : {}),
  })
}

export const header = `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
`
