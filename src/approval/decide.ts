// One approver's decision on a pending approval, as a pure function of the record: separation
// of duties (the requester never approves its own request; CI jobs and service accounts never
// approve), the rule's approver subjects or the break-glass group, one vote per approver, and
// the quorum of distinct approvers.
import type { Identity } from '../authn/index.ts'
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

/** Identity provenance that only machines carry (CI runs, Kubernetes service accounts). */
const MACHINE_EXTRA = [
  'repository',
  'run-id',
  'project-path',
  'pipeline-id',
  'job-id',
  'serviceaccount',
].map((k) => `gatehouse.dev/${k}`)

/** CI jobs, service accounts and the configured `nonHuman` subjects cannot approve. */
export function isNonHuman(who: Identity, nonHuman: readonly PolicySubject[] = []): boolean {
  return (
    who.name.startsWith('system:serviceaccount:') ||
    MACHINE_EXTRA.some((k) => who.extra[k]?.length) ||
    who.groups.some(
      (g) => g === 'system:serviceaccounts' || g.startsWith('system:serviceaccounts:'),
    ) ||
    (nonHuman.length > 0 && subjectsMatcher(nonHuman)(who))
  )
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

export function decideOn(
  a: ApprovalRecord,
  input: DecisionInput,
  opts: {
    now: number
    breakGlass?: readonly PolicySubject[] | undefined
    nonHuman?: readonly PolicySubject[] | undefined
  },
): DecisionOutcome {
  const { who } = input
  const comment = input.comment.trim()
  if (a.state !== 'pending')
    return { error: 'not-pending', message: `approval ${a.id} is ${a.state}, not pending` }
  if (comment.length > 2000)
    return { error: 'invalid', message: 'the comment is over 2000 characters' }
  if (input.decision === 'deny' && !comment)
    return { error: 'invalid', message: 'a denial needs a comment (the requester sees it)' }
  if (who.name === a.requester.name)
    return {
      error: 'forbidden',
      message: `${who.name} asked for this request and cannot decide on it (separation of duties)`,
    }
  if (isNonHuman(who, opts.nonHuman ?? []))
    return {
      error: 'forbidden',
      message: `${who.name} is a non-human identity (CI job or service account) and cannot approve`,
    }
  const may = mayDecide(a, who, { breakGlass: opts.breakGlass })
  if (!may.approver && !may.breakGlass)
    return {
      error: 'forbidden',
      message: `${who.name} is not an approver of ${a.rule.policy}/${a.rule.rule}`,
    }
  if (a.decisions.some((d) => d.by === who.name))
    return { error: 'conflict', message: `${who.name} already decided on approval ${a.id}` }
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
