// One approver's decision on a pending approval, as a pure function of the record: separation
// of duties (the requester never approves its own request), machine identities never approve
// (judged from everything known about the token, not only what the mapping kept), approvers
// come from the approvers' own login, the rule's approver subjects or the break-glass group,
// one vote per approver, and the quorum of distinct approvers.
import type { Identity } from '../authn/index.ts'
import type { GatewayConfig } from '../config/index.ts'
import { subjectsMatcher } from '../policy/engine.ts'
import type { PolicySubject } from '../policy/schema.ts'
import type { ApprovalDecision, ApprovalRecord } from './record.ts'

export interface DecisionInput {
  who: Identity
  decision: 'approve' | 'deny'
  comment: string
  via: ApprovalDecision['via']
}

export type DecisionError = 'not-found' | 'not-pending' | 'forbidden' | 'invalid' | 'conflict'

export type DecisionOutcome =
  { approval: ApprovalRecord } | { error: DecisionError; message: string }

/** Who may decide at all, from the whole configuration (server.ts builds it). */
export interface ApproverPolicy {
  breakGlass?: readonly PolicySubject[] | undefined
  /** approvals.nonHuman: configured machine markers (names, groups, issuers, claims). */
  nonHuman?: readonly PolicySubject[] | undefined
  /** Issuers whose tokens are machines' (authenticators with a CI or Kubernetes preset). */
  machineIssuers?: readonly string[] | undefined
  /**
   * Where approvers' bearer tokens (admin API, CLI) may come from: these OIDC issuers (the
   * web login's among them), and static tokens only when allowed. The web page's own logins
   * (OIDC against approvals.web.oidc, or the development login) always qualify.
   */
  approverIssuers?: readonly string[] | undefined
  staticTokenApprovers?: boolean | undefined
}

/** The approver policy of a configuration: its machine issuers and approvers' login. */
export function approverPolicyOf(config: GatewayConfig): ApproverPolicy {
  const a = config.approvals
  const approverIssuers = [
    ...(a.approverLogin?.issuers ?? []),
    ...(a.web?.oidc ? [a.web.oidc.issuer] : []),
  ]
  // An issuer named as the approvers' login is where people sign in, whatever else it serves;
  // its CI-shaped tokens are still known by their claims.
  const machineIssuers = config.authentication.authenticators
    .flatMap((x) => (x.oidc?.preset ? [x.oidc.issuer] : []))
    .filter((issuer) => !approverIssuers.includes(issuer))
  return {
    breakGlass: a.breakGlass,
    nonHuman: a.nonHuman,
    machineIssuers,
    approverIssuers,
    staticTokenApprovers: a.approverLogin?.insecureStaticTokens === true,
  }
}

/** Identity provenance that only machines carry (CI runs, Kubernetes service accounts). */
const MACHINE_EXTRA = [
  'repository',
  'run-id',
  'workflow',
  'job-workflow-ref',
  'project-path',
  'pipeline-id',
  'job-id',
  'serviceaccount',
  'pod-name',
].map((k) => `gatehouse.dev/${k}`)

/**
 * Claims that only workload tokens carry, mapped or not: GitHub Actions, GitLab CI, Kubernetes
 * service-account tokens (also Buildkite, CircleCI and Terraform Cloud run tokens).
 */
const MACHINE_CLAIMS = [
  'repository',
  'run_id',
  'run_attempt',
  'workflow',
  'workflow_ref',
  'job_workflow_ref',
  'runner_environment',
  'pipeline_id',
  'pipeline_source',
  'job_id',
  'runner_id',
  'ci_config_ref_uri',
  'project_path',
  'kubernetes.io',
  'build_number',
  'oidc.circleci.com/project-id',
  'terraform_run_id',
]

/** Subjects of workload tokens: GitHub `repo:...`, GitLab `project_path:...`, SPIFFE, service accounts. */
const MACHINE_SUBJECT =
  /^(repo:|project_path:|spiffe:\/\/|system:serviceaccount:|organization:.+:pipeline:)/

/** Token issuers that mint only workload tokens, whatever Gatehouse's configuration says. */
const MACHINE_ISSUERS = ['https://token.actions.githubusercontent.com']

/** Why `who` is a machine identity, or undefined for a person. */
export function machineReason(who: Identity, policy: ApproverPolicy = {}): string | undefined {
  if (who.name.startsWith('system:serviceaccount:')) return 'a Kubernetes service account'
  if (
    who.groups.some(
      (g) => g === 'system:serviceaccounts' || g.startsWith('system:serviceaccounts:'),
    )
  )
    return 'a Kubernetes service account'
  const extra = MACHINE_EXTRA.find((k) => who.extra[k]?.length)
  if (extra) return `its provenance has ${extra}`
  const claim = MACHINE_CLAIMS.find((c) => who.claims[c] !== undefined)
  if (claim) return `its token carries the '${claim}' claim of a CI job or workload`
  const sub = typeof who.claims['sub'] === 'string' ? who.claims['sub'] : who.subject
  if (sub && MACHINE_SUBJECT.test(sub)) return 'its token subject names a workload'
  if (who.name.startsWith('spiffe://')) return 'a SPIFFE workload identity'
  const issuer = who.issuer ?? ''
  if (issuer && [...MACHINE_ISSUERS, ...(policy.machineIssuers ?? [])].includes(issuer))
    return `its issuer ${issuer} mints workload tokens`
  if (policy.nonHuman?.length && subjectsMatcher(policy.nonHuman)(who))
    return 'it matches approvals.nonHuman'
  return undefined
}

/** CI jobs, service accounts, workload issuers and the configured `nonHuman` subjects cannot approve. */
export function isNonHuman(who: Identity, nonHuman: readonly PolicySubject[] = []): boolean {
  return machineReason(who, { nonHuman }) !== undefined
}

/** Why a login cannot decide at all (not from the approvers' identity provider), or undefined. */
export function approverSourceProblem(
  who: Identity,
  via: ApprovalDecision['via'],
  policy: ApproverPolicy,
): string | undefined {
  if (via !== 'api') return undefined
  if (who.method === 'static' && policy.staticTokenApprovers) return undefined
  if (who.method === 'oidc' && who.issuer && policy.approverIssuers?.includes(who.issuer))
    return undefined
  const how =
    who.method === 'oidc'
      ? `a token of ${who.issuer ?? 'an unnamed issuer'}`
      : `${who.method} credentials`
  return `${who.name} authenticated with ${how}; approvers decide with a login of the approvers' identity provider (the approvals page, or a token of approvals.approverLogin.issuers)`
}

/** Whether `who` may decide on `a` at all (used to filter inboxes too). */
export function mayDecide(
  a: ApprovalRecord,
  who: Identity,
  opts: { breakGlass?: readonly PolicySubject[] | undefined },
): { approver: boolean; breakGlass: boolean } {
  return {
    approver: subjectsMatcher(a.settings.approvers)(who),
    breakGlass: opts.breakGlass ? subjectsMatcher(opts.breakGlass)(who) : false,
  }
}

/** Why `who` cannot decide on `a` now (for the page and the API), or undefined when they can. */
export function whyNot(
  a: ApprovalRecord,
  who: Identity,
  via: ApprovalDecision['via'],
  policy: ApproverPolicy,
): { error: DecisionError; message: string } | undefined {
  if (a.state !== 'pending')
    return { error: 'not-pending', message: `approval ${a.id} is ${a.state}, not pending` }
  if (who.name === a.requester.name)
    return {
      error: 'forbidden',
      message: `${who.name} asked for this request and cannot decide on it (separation of duties)`,
    }
  const machine = machineReason(who, policy)
  if (machine)
    return {
      error: 'forbidden',
      message: `${who.name} is a non-human identity (${machine}) and cannot approve`,
    }
  const source = approverSourceProblem(who, via, policy)
  if (source) return { error: 'forbidden', message: source }
  const may = mayDecide(a, who, { breakGlass: policy.breakGlass })
  if (!may.approver && !may.breakGlass)
    return {
      error: 'forbidden',
      message: `${who.name} is not an approver of ${a.rule.policy}/${a.rule.rule}`,
    }
  if (a.decisions.some((d) => d.by === who.name))
    return { error: 'conflict', message: `${who.name} already decided on approval ${a.id}` }
  return undefined
}

export function decideOn(
  a: ApprovalRecord,
  input: DecisionInput,
  opts: { now: number } & ApproverPolicy,
): DecisionOutcome {
  const { who } = input
  const comment = input.comment.trim()
  if (a.state !== 'pending')
    return { error: 'not-pending', message: `approval ${a.id} is ${a.state}, not pending` }
  if (comment.length > 2000)
    return { error: 'invalid', message: 'the comment is over 2000 characters' }
  if (input.decision === 'deny' && !comment)
    return { error: 'invalid', message: 'a denial needs a comment (the requester sees it)' }
  const refused = whyNot(a, who, input.via, opts)
  if (refused) return refused
  const may = mayDecide(a, who, { breakGlass: opts.breakGlass })
  // Break-glass only when it is needed: a regular approver counts towards the quorum.
  const breakGlass = input.decision === 'approve' && may.breakGlass && !may.approver
  const d: ApprovalDecision = {
    by: who.name,
    groups: who.groups,
    decision: input.decision,
    comment,
    at: new Date(opts.now).toISOString(),
    via: input.via,
    ...(breakGlass ? { breakGlass: true } : {}),
  }
  const decisions = [...a.decisions, d]
  const next: ApprovalRecord = { ...a, decisions, version: a.version + 1 }
  if (input.decision === 'deny') {
    next.state = 'denied'
    next.reason = comment
  } else {
    const approvers = new Set(decisions.filter((x) => x.decision === 'approve').map((x) => x.by))
    if (breakGlass || approvers.size >= a.settings.quorum) {
      next.state = 'approved'
      next.usableUntil = new Date(opts.now + a.settings.reuseWindowSeconds * 1000).toISOString()
      if (breakGlass) next.breakGlass = true
    }
  }
  return { approval: next }
}
