// The join invariant, checked at the end of every e2e run (issue 18): in the test harness nothing
// but Gatehouse and the harness's own clients talks to the API server, so every event in the API
// server's audit log must be one of the classes below, and every event Gatehouse caused must join
// (by Audit-ID) a Gatehouse record whose decision allowed it. Anything else reached the cluster
// around Gatehouse's checks (a smuggled request, a forwarded byte nobody authorised) and fails
// the run, naming the request.
import { readAuditEvents, type AuditEvent } from './audit-log.ts'
import { collectGatehouseRecords, type JoinRecord } from './gatehouse-records.ts'

/** The harness's admin token (apiserver.ts tokens.csv): setup, fixtures, the fake kubelet. */
export const HARNESS_ADMIN_USER = 'harness-admin'
/** The API server's own loopback client (bootstrap controllers, priority and RBAC defaults). */
export const APISERVER_LOOPBACK_USER = 'system:apiserver'
/** test/e2e/direct: the scenarios run straight against the API server with this account. */
export const DIRECT_CLIENT_NAMESPACE = 'gatehouse-direct'
export const DIRECT_CLIENT_USER = `system:serviceaccount:${DIRECT_CLIENT_NAMESPACE}:direct-client`

/** The approval dry-run of a held request carries its record id plus this suffix. */
const DRY_RUN_SUFFIX = '-dry-run'
/**
 * Policy's pre-flights (src/upstream/dry-run.ts): before deciding on a write whose rule reads
 * `object` or `oldObject`, Gatehouse sends it with dryRun=All and gets the object, as the
 * principal it would forward as. They change nothing and join their request's record whatever
 * it decided (the decision is made on them).
 */
const PREFLIGHT_SUFFIXES = { '-policy-dry-run': 'dry run', '-policy-get': 'get' } as const
type Preflight = (typeof PREFLIGHT_SUFFIXES)[keyof typeof PREFLIGHT_SUFFIXES]

function preflightOf(auditID: string): { id: string; kind: Preflight } | undefined {
  for (const [suffix, kind] of Object.entries(PREFLIGHT_SUFFIXES))
    if (auditID.endsWith(suffix)) return { id: auditID.slice(0, -suffix.length), kind }
  return undefined
}

/** Why a policy pre-flight is not what its record's request could have sent, if it is not. */
function preflightProblem(e: AuditEvent, r: JoinRecord, kind: Preflight): string | undefined {
  if (e.user?.username === HARNESS_ADMIN_USER)
    return `Gatehouse used the harness admin credential: its events could not be told from the harness's`
  if (kind === 'dry run' && !/[?&]dryRun=All(&|$)/.test(e.requestURI))
    return `its Gatehouse record ${r.id} made a policy dry run, the API server saw a request without dryRun=All`
  if (kind === 'get' && e.verb !== 'get')
    return `its Gatehouse record ${r.id} made a policy get, the API server saw ${e.verb}`
  const p = r.principal
  if (p && p.via !== 'impersonation')
    return e.impersonatedUser || e.user?.username !== p.user
      ? `its Gatehouse record ${r.id} forwards with ${p.user}'s token, its pre-flight went as ${e.user?.username ?? '?'}`
      : undefined
  const as = p?.user ?? r.identity
  if (e.impersonatedUser?.username !== as)
    return `its Gatehouse record ${r.id} would act as ${as ?? '?'}, its pre-flight went as ${e.impersonatedUser?.username ?? 'no impersonation'}`
  return undefined
}

/**
 * The user agent of a test's own requests made with a Gatehouse account's token (proving what
 * the API server refuses that account, test/e2e/gateway/constrained-impersonation.test.ts).
 * Such an event joins no record; it is accepted only when the API server refused it.
 */
export const GATEHOUSE_TOKEN_PROBE_AGENT = 'gatehouse-e2e-token-probe'

function isRefusedTokenProbe(e: AuditEvent, gatehouse: ReadonlySet<string>): boolean {
  return (
    e.userAgent === GATEHOUSE_TOKEN_PROBE_AGENT &&
    gatehouse.has(e.user?.username ?? '') &&
    !e.impersonatedUser &&
    e.responseStatus?.code === 403
  )
}

/** Calls Gatehouse makes as itself (no caller behind them): token checks and minting. */
function isOwnCall(e: AuditEvent): boolean {
  const o = e.objectRef
  if (e.verb !== 'create' || !o) return false
  if (o.apiGroup === 'authentication.k8s.io')
    return o.resource === 'tokenreviews' || o.resource === 'selfsubjectreviews'
  if (o.apiGroup === 'authorization.k8s.io')
    return o.resource === 'selfsubjectaccessreviews' || o.resource === 'subjectaccessreviews'
  return (o.apiGroup ?? '') === '' && o.resource === 'serviceaccounts' && o.subresource === 'token'
}

/**
 * Gatehouse verifying the API server's ServiceAccount tokens (the `kubernetes` preset) reads the
 * issuer's discovery document and keys as the API server serves them: without credentials (the
 * harness lets system:unauthenticated read them, as docs/upstream-rbac.md tells users to).
 */
function isIssuerDiscovery(e: AuditEvent): boolean {
  return (
    e.user?.username === 'system:anonymous' &&
    e.verb === 'get' &&
    (e.requestURI === '/.well-known/openid-configuration' || e.requestURI === '/openid/v1/jwks')
  )
}

export interface JoinReport {
  events: number
  byClass: Record<string, number>
  violations: string[]
}

function describe(e: AuditEvent): string {
  const as = e.user?.username || '(unauthenticated)'
  const imp = e.impersonatedUser ? ` impersonating ${e.impersonatedUser.username}` : ''
  return `${e.verb} ${e.requestURI} as ${as}${imp} -> ${e.responseStatus?.code ?? '?'} (Audit-ID ${e.auditID}, user agent ${JSON.stringify(e.userAgent ?? '')})`
}

/** Why a Gatehouse record does not cover this event, or undefined when it does. */
function joinProblem(
  e: AuditEvent,
  r: JoinRecord,
  dryRun: boolean,
  gatehouse: ReadonlySet<string>,
): string | undefined {
  const allowed =
    r.decision === 'allow' ||
    (r.decision === 'approve' && (dryRun || r.approval === 'used' || r.approval === 'approved'))
  if (!allowed)
    return `its Gatehouse record ${r.id} (${r.request} by ${r.identity ?? '?'}) did not allow it (decision ${r.decision ?? 'none'}${r.error ? `, ${r.error}` : ''}${r.approval ? `, approval ${r.approval}` : ''})`
  if (e.user?.username === HARNESS_ADMIN_USER)
    return `Gatehouse used the harness admin credential: its events could not be told from the harness's`
  if (dryRun) {
    // the held request was refused (it waits for approval), so its record names no principal;
    // the dry-run is the same request, as the caller, with dryRun=All
    const as = r.principal?.user ?? r.identity
    if (!/[?&]dryRun=All(&|$)/.test(e.requestURI))
      return `its Gatehouse record ${r.id} allowed a dry-run, the API server saw a request without dryRun=All`
    if (e.impersonatedUser?.username !== as)
      return `its Gatehouse record ${r.id} dry-ran as ${as ?? '?'}, the API server saw ${e.impersonatedUser?.username ?? 'no impersonation'}`
    return undefined
  }
  const p = r.principal
  if (!p) return `its Gatehouse record ${r.id} names no principal (nothing was to be forwarded)`
  if (p.via === 'impersonation') {
    // the API server refused Gatehouse's account the impersonation (an identity its RBAC does
    // not list, deploy/rbac/impersonate-constrained.yaml): nothing ran, the caller saw the 403
    if (!e.impersonatedUser && e.responseStatus?.code === 403 && gatehouse.has(e.user?.username))
      return undefined
    if (e.impersonatedUser?.username !== p.user)
      return `its Gatehouse record ${r.id} forwarded as ${p.user} by impersonation, the API server saw ${e.impersonatedUser?.username ?? 'no impersonation'}`
  } else if (e.impersonatedUser || e.user?.username !== p.user)
    return `its Gatehouse record ${r.id} forwarded with ${p.user}'s token, the API server saw ${e.user?.username ?? '?'}`
  return undefined
}

/**
 * Classifies every audit event. `accounts` are Gatehouse's own usernames at the API server (more
 * are learnt from the events that join a record: whoever impersonated for Gatehouse).
 */
export function checkJoinInvariant(
  events: readonly AuditEvent[],
  records: readonly JoinRecord[],
  accounts: ReadonlySet<string>,
): JoinReport {
  const byId = new Map(records.map((r) => [r.id, r]))
  const gatehouse = new Set(accounts)
  const byClass: Record<string, number> = {}
  const count = (c: string): void => void (byClass[c] = (byClass[c] ?? 0) + 1)
  const violations = new Set<string>()
  const unjoined: AuditEvent[] = []
  for (const e of events) {
    const pre = preflightOf(e.auditID)
    if (pre) {
      const r = byId.get(pre.id)
      if (!r) {
        unjoined.push(e)
        continue
      }
      const problem = preflightProblem(e, r, pre.kind)
      if (problem) violations.add(`${describe(e)}: ${problem}`)
      else count(`gatehouse policy ${pre.kind}`)
      continue
    }
    const dryRun = e.auditID.endsWith(DRY_RUN_SUFFIX)
    const r = byId.get(dryRun ? e.auditID.slice(0, -DRY_RUN_SUFFIX.length) : e.auditID)
    if (!r) {
      unjoined.push(e)
      continue
    }
    const problem = joinProblem(e, r, dryRun, gatehouse)
    if (problem) violations.add(`${describe(e)}: ${problem}`)
    else {
      count(dryRun ? 'gatehouse approval dry-run' : 'gatehouse, joined to an allowing record')
      gatehouse.add(e.user.username)
    }
  }
  for (const e of unjoined) {
    const user = e.user?.username
    if (e.impersonatedUser)
      violations.add(`${describe(e)}: impersonation without a Gatehouse record`)
    else if (user === HARNESS_ADMIN_USER) count('harness admin')
    else if (user === APISERVER_LOOPBACK_USER) count('API server loopback')
    else if (user === DIRECT_CLIENT_USER) count('test/e2e/direct client')
    else if (user && gatehouse.has(user) && isOwnCall(e)) count('gatehouse own call')
    else if (isIssuerDiscovery(e)) count('gatehouse issuer discovery (anonymous)')
    else if (isRefusedTokenProbe(e, gatehouse)) count('test probe with a Gatehouse token, refused')
    else
      violations.add(`${describe(e)}: no Gatehouse record joins it and no harness client sent it`)
  }
  return { events: events.length, byClass, violations: [...violations] }
}

/**
 * The end-of-run check (scripts/run-tests.ts): the run's audit log against every registered
 * Gatehouse's records. Returns false and prints every violation when the invariant fails.
 */
export async function verifyJoinInvariant(run: {
  runDir: string
  auditLogPath: string
}): Promise<boolean> {
  const collected = await collectGatehouseRecords(run.runDir)
  const report = checkJoinInvariant(
    readAuditEvents(run.auditLogPath),
    collected.records,
    collected.accounts,
  )
  const classes = Object.entries(report.byClass)
    .map(([c, n]) => `${n} ${c}`)
    .join(', ')
  console.log(
    `[join invariant] ${report.events} API server audit events, ${collected.records.length} records of ${collected.instances} Gatehouse instances: ${classes || 'none'}`,
  )
  const failures = [...collected.problems, ...report.violations]
  // a check that reads nothing proves nothing: the harness admin always leaves events
  if (report.events === 0)
    failures.push(`the API server's audit log ${run.auditLogPath} is empty or missing`)
  if (failures.length === 0) return true
  console.error(
    `[join invariant] FAILED: ${failures.length} event(s) reached the API server outside Gatehouse's checks:`,
  )
  for (const f of failures.slice(0, 200)) console.error(`  - ${f}`)
  if (failures.length > 200) console.error(`  ... and ${failures.length - 200} more`)
  return false
}
