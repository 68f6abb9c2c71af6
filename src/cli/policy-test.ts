// `gatehouse policy test`: evaluate a policy set against request descriptions, for the CI of
// users' own policy repositories. A request is written as kubectl would send it
// ("DELETE /api/v1/namespaces/prod") and classified by the gateway's own attribute parser, so
// the test decides exactly what the gateway would.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import type { Identity } from '../authn/index.ts'
import { formatPath } from '../config/index.ts'
import { parseRequestInfo } from '../kube/request-info.ts'
import { selectorFactsOf } from '../kube/scope.ts'
import { execRequestFor } from '../kube/remote-command.ts'
import { ruleRef, type Decision, type PolicySet } from '../policy/index.ts'
import { boundRequest, type BoundRequest } from '../approval/binding.ts'
import { quote } from '../kube/describe.ts'

/** How a test case's caller authenticated (an Identity's `method`). */
export const IDENTITY_METHODS = ['oidc', 'tokenReview', 'mtls', 'static'] as const

const identitySchema = z.strictObject({
  name: z.string().min(1),
  groups: z.array(z.string()).default([]),
  method: z.enum(IDENTITY_METHODS).default('oidc'),
  issuer: z.string().optional(),
  subject: z.string().optional(),
  claims: z.record(z.string(), z.unknown()).default({}),
})

export const testCaseSchema = z.strictObject({
  name: z.string().optional(),
  identity: identitySchema,
  cluster: z.string().default('default'),
  /** `METHOD /path?query`, as the client sends it. */
  request: z
    .string()
    .regex(/^[A-Z]+ \/\S*$/, 'expected "METHOD /path?query", e.g. "GET /api/v1/namespaces/a/pods"'),
  /** What the write would store, for `when` conditions on `object` (the gateway asks the API server). */
  object: z.unknown().optional(),
  /** What is stored now, for conditions on `oldObject`. */
  oldObject: z.unknown().optional(),
  /** A patch's media type (`application/apply-patch+yaml`: server-side apply, which can create). */
  patchType: z.string().optional(),
  expect: z.enum(['allow', 'deny', 'approve']).optional(),
  /** `policy/rule` or a built-in such as `builtin:default-deny`. */
  expectRule: z.string().optional(),
  /** Whether what the caller receives is masked (allowed requests; policy `mask.enabled`). */
  expectMasked: z.boolean().optional(),
})

export const testFileSchema = z.strictObject({ cases: z.array(testCaseSchema).min(1) })

export type PolicyTestCase = z.infer<typeof testCaseSchema>

export interface PolicyTestResult {
  case: PolicyTestCase
  decision?: Decision
  /** Why the request could not be evaluated (unclassifiable path). */
  error?: string
  /** Expectation not met. */
  failure?: string
  /** For approve decisions: exactly what an approval of this request is bound to. */
  binding?: BoundRequest
}

export function loadTestFile(file: string): PolicyTestCase[] {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.split('\n')[0]}`)
  }
  const parsed = testFileSchema.safeParse(raw)
  if (!parsed.success)
    throw new Error(
      parsed.error.issues.map((i) => `${file}: ${formatPath(i.path)}: ${i.message}`).join('\n'),
    )
  return parsed.data.cases
}

export function runPolicyTests(
  set: PolicySet,
  cases: readonly PolicyTestCase[],
): PolicyTestResult[] {
  return cases.map((c) => {
    const space = c.request.indexOf(' ')
    const method = c.request.slice(0, space)
    const target = c.request.slice(space + 1)
    const parsed = parseRequestInfo(method, target)
    if (!parsed.ok)
      return {
        case: c,
        error: `Gatehouse refuses this request before policy: ${parsed.reason}`,
        ...(c.expect === 'allow' ? { failure: 'expected allow' } : {}),
      }
    const identity: Identity = { ...c.identity, extra: {} } as Identity
    const exec = execRequestFor(parsed.info)
    const decision = set.evaluate({
      ...(exec ? { exec } : {}),
      cluster: c.cluster,
      info: parsed.info,
      identity,
      object: () => ({ value: c.object ?? null }),
      selector: selectorFactsOf(parsed.info.query),
      ...(c.patchType ? { patchType: c.patchType } : {}),
      ...(c.oldObject !== undefined ? { oldObject: () => ({ value: c.oldObject }) } : {}),
      dryRun: /(^|[?&])dryRun=All(&|$)/.test(target),
    })
    const ref = decision.policy ? `${decision.policy}/${decision.rule}` : decision.rule
    const binding =
      decision.action === 'approve'
        ? boundRequest({
            identity,
            cluster: c.cluster,
            method,
            info: parsed.info,
            target,
            contentType: c.object === undefined ? '' : 'application/json',
            body: c.object === undefined ? undefined : Buffer.from(JSON.stringify(c.object)),
          })
        : undefined
    let failure: string | undefined
    if (c.expect && c.expect !== decision.action) failure = `expected ${c.expect}`
    else if (c.expectRule && c.expectRule !== ref) failure = `expected rule ${c.expectRule}`
    else if (c.expectMasked !== undefined && c.expectMasked !== masked(decision))
      failure = c.expectMasked ? 'expected masked responses' : 'expected unmasked responses'
    return { case: c, decision, ...(failure ? { failure } : {}), ...(binding ? { binding } : {}) }
  })
}

function masked(d: Decision): boolean {
  return d.action !== 'deny' && d.obligations.mask?.enabled !== false
}

export function formatResult(r: PolicyTestResult): string {
  const label = r.case.name ? `${r.case.name}: ` : ''
  const who = r.case.identity.name
  const head = `${label}${who} ${r.case.request}`
  const verdict = r.failure
    ? `FAIL (${r.failure})`
    : r.case.expect || r.case.expectRule || r.case.expectMasked !== undefined
      ? 'ok'
      : ''
  if (r.error)
    return `REFUSED  ${head}\n         ${r.error}${verdict ? `\n         ${verdict}` : ''}`
  const d = r.decision!
  const lines = [
    `${d.action.toUpperCase().padEnd(8)} ${head}`,
    `         by ${d.policy ? ruleRef(d) : d.rule}${d.message ? `: ${d.message}` : ''}`,
  ]
  if (d.coverage) lines.push(`         covered: ${d.coverage}`)
  if (d.obligations.filter?.length)
    lines.push(
      `         filtered: the response leaves out what ${d.obligations.filter.map((f) => `${f.policy}/${f.rule}`).join(', ')} protect`,
    )
  if (d.shadow) lines.push(`         shadow: ${ruleRef(d.shadow)} would ${d.shadow.action}`)
  for (const e of d.conditionErrors ?? []) lines.push(`         condition error: ${e}`)
  if (r.binding) lines.push(...bindingLines(r.binding))
  if (verdict) lines.push(`         ${verdict}`)
  return lines.join('\n')
}

/** What an approval of the request is bound to, one attribute a line. */
export function bindingLines(b: BoundRequest): string[] {
  const query = b.query.map(
    ([k, v]) => `${k}=${v.length === 1 ? quote(v[0]!) : `[${v.map(quote).join(', ')}]`}`,
  )
  return [
    '         approval bound to:',
    `           identity ${quote(b.identity)} groups [${b.groups.map(quote).join(', ')}] cluster ${quote(b.cluster)}`,
    `           ${b.method} ${quote(b.path)}`,
    `           query ${query.length ? query.join(' ') : '(none)'}${b.rawQuery !== undefined ? ` (raw, as proxied: ${quote(b.rawQuery)})` : ''}`,
    ...(b.unbound.length ? [`           not bound: ${b.unbound.join(', ')}`] : []),
    `           content-type ${b.contentType ? quote(b.contentType) : '(none)'}, body sha256 ${b.bodySha256 || '(no body)'}`,
  ]
}
