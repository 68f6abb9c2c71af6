// Approvals: a request whose decision is `approve` waits (hold) or is refused with the approval's
// id (retry) until enough approvers approved that exact request. The pending approval lives in
// the audit store, so it survives a restart and every replica sees it; a decision taken on one
// replica wakes the requests held on the others (the store's change notifications, and polling).
import { randomUUID } from 'node:crypto'
import type { AuditRecord } from '../audit/record.ts'
import type { AuditStore } from '../audit/store.ts'
import type { Identity } from '../authn/index.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { RequestContext } from '../pipeline/context.ts'
import { describeRequest } from '../pipeline/stages/authorize.ts'
import { decodeRequestObject } from '../pipeline/stages/read-body.ts'
import { maskRequestTarget } from '../masking/text.ts'
import { selectClaims } from '../audit/record.ts'
import { bodyHash, maskedBody, requestBinding } from './binding.ts'
import type { ApprovalQuery, ApprovalRecord } from './record.ts'
import { stepRecord, type ApprovalEvent } from './steps.ts'
import { decideOn, type DecisionInput, type DecisionOutcome } from './decide.ts'

/** Told about every step (notifications); must never throw or block. */
export type ApprovalListener = (event: ApprovalEvent, a: ApprovalRecord) => void

export interface ApprovalServiceOptions {
  store: AuditStore
  /** Where step records go (the AuditWriter). */
  audit: { write(record: AuditRecord): void }
  logger: Logger
  config: ApprovalsConfig
  /** The approval page's base URL (admin listener or approvals.publicUrl), when there is one. */
  approveUrl?: () => string | undefined
  /** Fills in the dry-run result of a new approval (best effort). */
  dryRun?: (ctx: RequestContext) => Promise<ApprovalRecord['dryRun']>
  now?: () => number
}

const JUSTIFICATION_HEADER = 'x-gatehouse-justification'
const JUSTIFICATION_CLAIMS = ['justification', 'reason']

function justificationOf(ctx: RequestContext): string | undefined {
  const h = ctx.req.headers[JUSTIFICATION_HEADER]
  const claims = ctx.identity!.claims
  const claim = JUSTIFICATION_CLAIMS.map((c) => claims[c]).find((v) => typeof v === 'string')
  const v = typeof h === 'string' ? h : claim
  return v?.trim() ? v.trim().slice(0, 2000) : undefined
}

/**
 * What approvers read first: `create clusterrolebindings.rbac.authorization.k8s.io "x"`. A
 * request without a namespace that is not a list is cluster-scoped (not "in all namespaces"),
 * and a create names its object in the body (JSON and YAML bodies; protobuf is not decoded).
 */
function summaryOf(ctx: RequestContext): string {
  const info = ctx.requestInfo!
  let name = info.name
  if (info.authzVerb === 'create' && !name && !info.subresource) {
    const o = decodeRequestObject(ctx)
    const v = 'value' in o ? (o.value as { metadata?: { name?: unknown } } | null) : null
    if (typeof v?.metadata?.name === 'string') name = v.metadata.name.slice(0, 253)
  }
  const s = describeRequest({ ...info, name })
  return ['list', 'watch', 'deletecollection'].includes(info.authzVerb)
    ? s
    : s.replace(/ in all namespaces$/, '')
}

/** Why a hold ended without the approval: the client left, or Gatehouse is stopping. */
class HoldInterrupted extends Error {}

export class ApprovalService {
  readonly #o: ApprovalServiceOptions
  readonly #now: () => number
  /** Held requests on this replica, by approval id: woken on every change of that approval. */
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #listeners: ApprovalListener[] = []
  #sweeper: NodeJS.Timeout | undefined
  #stopListening: (() => Promise<void>) | undefined
  #closing = false
  #seq = 0

  constructor(opts: ApprovalServiceOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
  }

  onEvent(listener: ApprovalListener): void {
    this.#listeners.push(listener)
  }

  /** Listens for changes from other replicas and starts the expiry sweep. */
  async start(): Promise<void> {
    if (this.#o.store.onApprovalChange)
      this.#stopListening = await this.#o.store.onApprovalChange((id) => this.#wake(id))
    this.#sweeper = setInterval(() => {
      this.sweep().catch((e: unknown) =>
        this.#o.logger.warn({ error: String(e) }, 'approval expiry sweep failed'),
      )
    }, this.#o.config.pollIntervalMs).unref()
  }

  /** Held requests end (the approvals stay pending, a retry finds them); no new holds. */
  shutdown(): void {
    this.#closing = true
    for (const id of [...this.#waiters.keys()]) this.#wake(id)
  }

  async close(): Promise<void> {
    this.shutdown()
    clearInterval(this.#sweeper)
    await this.#stopListening?.()
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return this.#o.store.getApproval(id)
  }

  list(q: ApprovalQuery): Promise<ApprovalRecord[]> {
    return this.#o.store.queryApprovals(q)
  }

  /** Marks pending approvals past their expiry as expired (one replica wins each). */
  async sweep(): Promise<number> {
    const pending = await this.#o.store.queryApprovals({ state: 'pending', limit: 1000 })
    let n = 0
    for (const a of pending)
      if (this.#now() >= Date.parse(a.expiresAt) && (await this.#expire(a))) n++
    // held requests recheck on every sweep: a change another replica's notice did not carry
    for (const id of this.#waiters.keys()) this.#wake(id)
    return n
  }

  /**
   * The hold stage: returns when the request may pass (an approval of this exact request was
   * used), or throws the Status the client gets (pending with its id, denied, expired).
   */
  async hold(ctx: RequestContext): Promise<void> {
    const settings = ctx.decision!.obligations.approval!
    const binding = requestBinding(ctx)
    for (let attempt = 0; attempt < 20; attempt++) {
      const found = await this.#o.store.queryApprovals({ binding, limit: 50 })
      let pending: ApprovalRecord | undefined
      for (const a of found) {
        if (a.requester.name !== ctx.identity!.name) continue
        if (a.state === 'approved' && (await this.#use(a, ctx))) return
        if (a.state === 'pending' && this.#now() < Date.parse(a.expiresAt)) pending ??= a
      }
      const a = pending ?? (await this.#create(ctx, binding))
      if (settings.wait === 'retry' || this.#closing) throw this.#pendingError(a, ctx)
      ctx.approval = { id: a.id, event: 'requested', requestId: a.requestId }
      const outcome = await this.#waitFor(a.id, ctx)
      if (outcome === 'again') continue
      if (outcome.state === 'approved' && (await this.#use(outcome, ctx))) return
      if (outcome.state === 'denied') throw this.#deniedError(outcome)
      if (outcome.state === 'expired') throw this.#expiredError(outcome)
      // approved but the use went to another identical request: ask again
    }
    throw new GatewayError('GW_INTERNAL', 'Gatehouse could not settle the approval of this request')
  }

  /** An approver's decision; see decide.ts for the rules (separation of duties, quorum...). */
  async decide(id: string, input: DecisionInput): Promise<DecisionOutcome> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const a = await this.#o.store.getApproval(id)
      if (!a) return { error: 'not-found', message: `no approval ${id}` }
      if (a.state === 'pending' && this.#now() >= Date.parse(a.expiresAt)) {
        await this.#expire(a)
        continue
      }
      const r = decideOn(a, input, {
        now: this.#now(),
        breakGlass: this.#o.config.breakGlass,
        nonHuman: this.#o.config.nonHuman,
      })
      if ('error' in r) return r
      if (!(await this.#o.store.updateApproval(r.approval))) continue
      const d = r.approval.decisions.at(-1)!
      this.#step(r.approval, d.decision === 'approve' ? 'approved' : 'denied', {
        actor: input.who,
        by: input.who.name,
        comment: d.comment,
        ...(d.breakGlass ? { breakGlass: true } : {}),
      })
      if (d.breakGlass)
        this.#o.logger.warn(
          { approval: id, by: input.who.name, request: r.approval.request.summary },
          'BREAK-GLASS approval: approved alone, without quorum',
        )
      await this.#changed(r.approval)
      return r
    }
    return { error: 'conflict', message: `approval ${id} kept changing; try again` }
  }

  async #create(ctx: RequestContext, binding: string): Promise<ApprovalRecord> {
    const d = ctx.decision!
    const s = d.obligations.approval!
    const info = ctx.requestInfo!
    const who = ctx.identity!
    const now = this.#now()
    const body = maskedBody(ctx)
    const justification = justificationOf(ctx)
    const a: ApprovalRecord = {
      id: randomUUID(),
      state: 'pending',
      binding,
      requestId: ctx.id,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + s.expiresIn * 1000).toISOString(),
      cluster: ctx.cluster!.name,
      requester: {
        name: who.name,
        groups: who.groups,
        method: who.method,
        ...(who.issuer ? { issuer: who.issuer } : {}),
        ...(who.subject ? { subject: who.subject } : {}),
        claims: selectClaims(who.claims),
        extra: who.extra,
      },
      request: {
        method: ctx.req.method ?? 'GET',
        target: maskRequestTarget(ctx.upstreamPath ?? ctx.req.url ?? ''),
        verb: info.authzVerb,
        apiGroup: info.apiGroup,
        apiVersion: info.apiVersion,
        resource: info.resource,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name,
        bodySha256: bodyHash(ctx),
        summary: summaryOf(ctx),
      },
      ...(body ? { body } : {}),
      ...(justification ? { justification } : {}),
      rule: { policy: d.policy ?? '', rule: d.rule },
      settings: {
        approvers: s.approvers,
        quorum: s.quorum,
        wait: s.wait,
        reuseWindowSeconds: s.reuse?.window ?? 600,
        reuseUses: s.reuse?.uses ?? 1,
      },
      decisions: [],
      uses: [],
      version: 1,
    }
    if (this.#o.dryRun) {
      const dry = await this.#o.dryRun(ctx).catch((e: unknown) => ({ error: String(e) }))
      if (dry) a.dryRun = dry
    }
    await this.#o.store.insertApproval(a)
    this.#step(a, 'requested', { actor: who })
    this.#o.logger.info(
      { approval: a.id, identity: who.name, request: a.request.summary, wait: s.wait },
      'approval requested',
    )
    return a
  }

  /** Spends one use of an approved approval on this request; false when none is left. */
  async #use(a: ApprovalRecord, ctx: RequestContext): Promise<boolean> {
    for (let cur: ApprovalRecord | undefined = a; cur; cur = await this.get(a.id)) {
      if (cur.state !== 'approved') return false
      const now = this.#now()
      const expired = now >= Date.parse(cur.usableUntil ?? cur.expiresAt)
      const next: ApprovalRecord = {
        ...cur,
        uses: expired
          ? cur.uses
          : [...cur.uses, { requestId: ctx.id, at: new Date(now).toISOString() }],
        version: cur.version + 1,
      }
      if (expired || next.uses.length >= cur.settings.reuseUses) next.state = 'used'
      if (!(await this.#o.store.updateApproval(next))) continue
      if (expired) return false
      ctx.approval = { id: a.id, event: 'used', requestId: a.requestId }
      this.#step(next, 'used', { requestId: ctx.id })
      if (next.state === 'used') await this.#changed(next)
      return true
    }
    return false
  }

  async #expire(a: ApprovalRecord): Promise<boolean> {
    const next: ApprovalRecord = {
      ...a,
      state: 'expired',
      reason: `nobody decided within ${Math.round((Date.parse(a.expiresAt) - Date.parse(a.createdAt)) / 1000)}s`,
      version: a.version + 1,
    }
    if (!(await this.#o.store.updateApproval(next))) return false
    this.#step(next, 'expired', {})
    await this.#changed(next)
    return true
  }

  /** Waits for a change of approval `id`: its new record, or 'again' (look for another). */
  async #waitFor(id: string, ctx: RequestContext): Promise<ApprovalRecord | 'again'> {
    const gone = new Promise<never>((_, reject) => {
      const onClose = (): void => reject(new HoldInterrupted('the client went away'))
      if (ctx.req.socket?.destroyed) return onClose()
      const target = ctx.res ?? ctx.upgrade?.socket
      target?.once('close', onClose)
    })
    gone.catch(() => undefined)
    for (;;) {
      const a = await this.get(id)
      if (!a) return 'again'
      if (a.state !== 'pending') return a
      if (this.#now() >= Date.parse(a.expiresAt)) {
        await this.#expire(a)
        continue
      }
      if (this.#closing) throw this.#pendingError(a, ctx)
      const wait = Math.max(
        10,
        Math.min(this.#o.config.pollIntervalMs, Date.parse(a.expiresAt) - this.#now()),
      )
      let wake: () => void = () => undefined
      const woken = new Promise<void>((resolve) => (wake = resolve))
      const timer = setTimeout(wake, wait)
      const set = this.#waiters.get(id) ?? new Set()
      set.add(wake)
      this.#waiters.set(id, set)
      try {
        await Promise.race([woken, gone])
      } catch (e) {
        if (!(e instanceof HoldInterrupted)) throw e
        this.#o.logger.info(
          { approval: id, requestId: ctx.id },
          'held request ended by the client; the approval stays pending for a retry',
        )
        throw new GatewayError(
          'GW_APPROVAL_PENDING',
          `the client went away; approval ${id} stays pending and a retry of the same request waits for it`,
        )
      } finally {
        clearTimeout(timer)
        set.delete(wake)
        if (set.size === 0) this.#waiters.delete(id)
      }
    }
  }

  #wake(id: string): void {
    for (const w of this.#waiters.get(id) ?? []) w()
  }

  /** After a change: wake local holds, tell the other replicas. */
  async #changed(a: ApprovalRecord): Promise<void> {
    this.#wake(a.id)
    await this.#o.store
      .broadcastApprovalChange?.(a.id)
      .catch((e: unknown) =>
        this.#o.logger.warn({ approval: a.id, error: String(e) }, 'approval change not broadcast'),
      )
  }

  #step(
    a: ApprovalRecord,
    event: ApprovalEvent,
    opts: {
      actor?: Identity
      by?: string
      comment?: string
      breakGlass?: boolean
      requestId?: string
      detail?: string
    },
  ): void {
    const { actor, requestId, ...link } = opts
    try {
      this.#o.audit.write(
        stepRecord(
          a,
          { event, ...link },
          {
            now: this.#now(),
            seq: ++this.#seq,
            ...(actor ? { actor } : {}),
            ...(requestId ? { requestId } : {}),
          },
        ),
      )
    } catch (e) {
      this.#o.logger.error(
        { approval: a.id, event, error: String(e) },
        'approval step not recorded',
      )
    }
    for (const l of this.#listeners) l(event, a)
  }

  /** A notification's outcome, as an audit step of the approval. */
  notified(
    a: ApprovalRecord,
    event: ApprovalEvent,
    d: { target: string; ok: boolean; attempts: number; error?: string },
  ): void {
    this.#step(a, 'notified', {
      detail: `${event} to ${d.target}: ${d.ok ? 'delivered' : `not delivered (${d.error ?? ''})`} after ${d.attempts} attempt(s)`,
    })
  }

  /** Where an approver acts on approval `id`. */
  where(id: string): string {
    const base = this.#o.approveUrl?.()
    return base ? `${base.replace(/\/$/, '')}/approvals/${id}` : `gatehouse approvals approve ${id}`
  }

  #pendingError(a: ApprovalRecord, ctx: RequestContext): GatewayError {
    ctx.approval = { id: a.id, event: 'requested', requestId: a.requestId }
    const quorum = a.settings.quorum > 1 ? ` (${a.settings.quorum} approvers needed)` : ''
    return new GatewayError(
      'GW_APPROVAL_PENDING',
      `Gatehouse holds ${a.request.summary} for approval: approval ${a.id} is pending${quorum} (${a.rule.policy}/${a.rule.rule}); approve at ${this.where(a.id)}, then retry the same request before ${a.expiresAt}`,
    )
  }

  #deniedError(a: ApprovalRecord): GatewayError {
    const d = a.decisions.findLast((x) => x.decision === 'deny')
    return new GatewayError(
      'GW_APPROVAL_DENIED',
      `approval ${a.id} was denied by ${d?.by ?? 'an approver'}: ${JSON.stringify(d?.comment ?? '')}`,
    )
  }

  #expiredError(a: ApprovalRecord): GatewayError {
    return new GatewayError(
      'GW_APPROVAL_EXPIRED',
      `approval ${a.id} expired at ${a.expiresAt} without a decision (${a.reason ?? 'nobody decided'}); send the request again to ask anew`,
    )
  }
}
