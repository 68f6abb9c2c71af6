// `gatehouse policy test`: its options, and the requests given on the command line as cases.
import { readFileSync } from 'node:fs'
import { loadPolicies, PolicySet } from '../policy/index.ts'
import { fail, type Command, type Values } from './command.ts'
import {
  IDENTITY_METHODS,
  formatResult,
  loadTestFile,
  runPolicyTests,
  type PolicyTestCase,
  type PolicyTestResult,
} from './policy-test.ts'
import { forTerminal, jsonForTerminal } from './terminal.ts'

const COMMAND = 'gatehouse policy test'

function commandLineCases(values: Values, requests: readonly string[]): PolicyTestCase[] {
  if (requests.length && typeof values['identity'] !== 'string')
    fail(`${COMMAND}: --identity is required with requests on the command line`, 2)
  const claims: Record<string, unknown> = {}
  for (const c of (values['claim'] as string[] | undefined) ?? []) {
    const eq = c.indexOf('=')
    if (eq < 1) fail(`${COMMAND}: --claim ${c}: expected NAME=VALUE`, 2)
    claims[c.slice(0, eq)] = c.slice(eq + 1)
  }
  let object: unknown
  const objectFile = values['object']
  if (typeof objectFile === 'string') {
    try {
      object = JSON.parse(readFileSync(objectFile, 'utf8'))
    } catch (e) {
      fail(`${COMMAND}: --object ${objectFile}: ${(e as Error).message}`, 2)
    }
  }
  return requests.map((request) => {
    if (!/^[A-Z]+ \/\S*$/.test(request))
      fail(`${COMMAND}: '${request}': expected "METHOD /path?query"`, 2)
    return {
      identity: {
        name: values['identity'] as string,
        groups: (values['group'] as string[] | undefined) ?? [],
        method: values['method'] as PolicyTestCase['identity']['method'],
        ...(typeof values['issuer'] === 'string' ? { issuer: values['issuer'] } : {}),
        claims,
      },
      cluster: values['cluster'] as string,
      request,
      ...(object !== undefined ? { object } : {}),
    }
  })
}

function print(results: readonly PolicyTestResult[], output: unknown, fromFile: boolean): void {
  if (output === 'json') {
    for (const r of results)
      process.stdout.write(
        jsonForTerminal({
          name: r.case.name,
          identity: r.case.identity.name,
          request: r.case.request,
          ...(r.decision ? { decision: r.decision } : {}),
          ...(r.binding ? { binding: r.binding } : {}),
          ...(r.error ? { error: r.error } : {}),
          ...(r.failure ? { failure: r.failure } : {}),
        }) + '\n',
      )
    return
  }
  const text = results.map(formatResult).join('\n')
  process.stdout.write(text.split('\n').map(forTerminal).join('\n') + '\n')
  const failed = results.filter((r) => r.failure).length
  if (fromFile || failed)
    process.stdout.write(`\n${results.length - failed} passed, ${failed} failed\n`)
}

export const policyTestCommand: Command = {
  name: 'policy test',
  summary: 'evaluate policies against requests; exit 1 when an expectation in CASES.yaml fails',
  description:
    'Requests are written as clients send them ("DELETE /api/v1/namespaces/prod") and classified by\nGatehouse\'s own parser; for approve decisions it prints what an approval is bound to.',
  options: {
    policies: {
      type: 'string',
      short: 'p',
      multiple: true,
      value: 'PATH',
      help: 'a policy file or directory',
      required: true,
    },
    file: { type: 'string', short: 'f', value: 'CASES.yaml', help: 'test cases with expectations' },
    identity: {
      type: 'string',
      value: 'NAME',
      help: 'the caller of the requests on the command line',
    },
    group: { type: 'string', multiple: true, value: 'G', help: "the caller's groups" },
    issuer: { type: 'string', value: 'URL', help: "the caller's token issuer" },
    method: {
      type: 'string',
      choices: IDENTITY_METHODS,
      default: 'oidc',
      help: 'how the caller authenticated',
    },
    claim: { type: 'string', multiple: true, value: 'K=V', help: "the caller's token claims" },
    cluster: { type: 'string', value: 'NAME', default: 'default', help: 'the cluster' },
    object: {
      type: 'string',
      value: 'FILE',
      help: 'the request body (JSON), for conditions on object',
    },
    output: {
      type: 'string',
      short: 'o',
      choices: ['text', 'json'],
      default: 'text',
      help: 'text or JSON lines',
    },
  },
  positionals: { name: '"METHOD /path?query"', min: 0, max: Infinity },
  examples: [
    'gatehouse policy test -p policies/ -f policy-tests.yaml',
    'gatehouse policy test -p policies/ --identity github:octo-org/app --claim repository=octo-org/app "DELETE /api/v1/namespaces/prod"',
    'gatehouse policy test -p policies/ --identity ci --group deployers -o json "GET /api/v1/namespaces/prod/secrets"',
  ],
  run(values, requests) {
    if (typeof values['file'] !== 'string' && requests.length === 0)
      fail(`${COMMAND}: give --file CASES.yaml or requests like "GET /api/v1/pods"`, 2)
    const set = new PolicySet(loadPolicies(values['policies'] as string[]))
    const cases: PolicyTestCase[] =
      typeof values['file'] === 'string' ? loadTestFile(values['file']) : []
    cases.push(...commandLineCases(values, requests))
    const results = runPolicyTests(set, cases)
    print(results, values['output'], typeof values['file'] === 'string')
    if (results.some((r) => r.failure)) process.exitCode = 1
  },
}
