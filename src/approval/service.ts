// Approvals: a request whose decision is `approve` waits (hold) or is refused with the approval's
// id (retry) until enough approvers approved that exact request. The pending approval lives in
// the database, so it survives a restart and every replica sees it; a decision taken on one
// replica wakes the requests held on the others (the database's change notifications, and
// polling).
import type { AuditRecord } from '../audit/record.ts'
import type { Identity } from '../authn/index.ts'
import type { ApprovalsConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { HeldRequest } from './request.ts'
import { escapeInvisible, quote } from '../kube/describe.ts'
import { subjectsMatcher } from '../policy/engine.ts'
import { bindingKey, boundRequest } from './binding.ts'
import { bindingInputOf, newApproval } from './new-approval.ts'
import type { ApprovalQuery, ApprovalRecord } from './record.ts'
import type { ApprovalRepository } from './repository.ts'
import { stepRecord, type ApprovalEvent } from './steps.ts'
import {
  decideOn,
  type ApproverPolicy,
  type DecisionInput,
  type DecisionOutcome,
} from './decide.ts'

/** Told about every step (notifications); must never throw or block. */
export type ApprovalListener = (event: ApprovalEvent, a: ApprovalRecord) => void

export interface ApprovalServiceOptions {
  store: ApprovalRepository
  /** Where step records go (the AuditWriter). */
  audit: { write(record: AuditRecord): void }
  logger: Logger
  config: ApprovalsConfig
  /** The approval page's base URL (admin listener or approvals.publicUrl), when there is one. */
  approveUrl?: () => string | undefined
  /** Who may decide, beyond each rule's approvers (machine identities, approver logins). */
  approvers?: ApproverPolicy
  now?: () => number
}

/** What one person's listing covers: a page of approvals and how many there are in all. */
export interface ApprovalPage {
  items: ApprovalRecord[]
  total: number
}

/** A client's retry of a refused upgrade over its other transport comes within this time. */
const FALLBACK_MS = 30_000

/** Retry-After of a refusal for too many pending approvals: at most this long. */
const MAX_LIMIT_RETRY_SECONDS = 30

/** Why a hold ended without the approval: the client left, or Gatehouse is stopping. */
class HoldInterrupted extends Error {}

/** Rejects once the held request's client is gone (HeldRequest.gone). */
function clientGone(held: HeldRequest): { promise: Promise<never>; stop(): void } {
  let stop = (): void => undefined
  const promise = new Promise<never>((_, reject) => {
    const onGone = (): void => reject(new HoldInterrupted('the client went away'))
    if (held.gone.aborted) return onGone()
    held.gone.addEventListener('abort', onGone, { once: true })
    stop = () => held.gone.removeEventListener('abort', onGone)
  })
  promise.catch(() => undefined)
  return { promise, stop: () => stop() }
}

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
  /** Creations in flight per identity, one at a time, so the pending limit holds on a replica. */
  readonly #creating = new Map<string, Promise<unknown>>()

  constructor(opts: ApprovalServiceOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
  }

  onEvent(listener: ApprovalListener): void {
    this.#listeners.push(listener)
  }

  /** Listens for changes from other replicas and starts the expiry sweep. */
  async start(): Promise<void> {
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

  get policy(): ApproverPolicy {
    return this.#o.approvers ?? {}
  }

  /**
   * What `who` may see, as a store query: admins and break-glass members everything, others
   * the approvals whose approver list matches them and their own requests.
   */
  async visibleTo(who: Identity, isAdmin: boolean): Promise<ApprovalQuery['visibleTo']> {
    const breakGlass = this.#o.approvers?.breakGlass ?? this.#o.config.breakGlass
    if (isAdmin || (breakGlass && subjectsMatcher(breakGlass)(who))) return undefined
    const sets = await this.#o.store.approverSets()
    return {
      approverSets: sets.filter((s) => subjectsMatcher(s.approvers)(who)).map((s) => s.key),
      requester: who.name,
    }
  }

  /** One page of what `who` may see, filtered by `q`, with the count of all of it. */
  async page(who: Identity, isAdmin: boolean, q: ApprovalQuery): Promise<ApprovalPage> {
    const visibleTo = await this.visibleTo(who, isAdmin)
    const query: ApprovalQuery = { ...q, ...(visibleTo ? { visibleTo } : {}) }
    const [items, total] = await Promise.all([
      this.#o.store.queryApprovals(query),
      this.#o.store.countApprovals(query),
    ])
    return { items, total }
  }

  /** Marks pending approvals past their expiry as expired (one replica wins each). */
  async sweep(): Promise<number> {
    const pending = await this.#o.store.queryApprovals({
      state: 'pending',
      expiresByMs: this.#now(),
      limit: 1000,
    })
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
  async hold(held: HeldRequest): Promise<void> {
    const { request } = held
    const settings = request.decision.obligations.approval
    if (!settings) throw new GatewayError('GW_INTERNAL', 'a held request without approval settings')
    const binding = bindingKey(boundRequest(bindingInputOf(request)))
    for (let attempt = 0; attempt < 20; attempt++) {
      const found = await this.#o.store.queryApprovals({ binding, limit: 50 })
      let pending: ApprovalRecord | undefined
      for (const a of found) {
        if (a.requester.name !== request.identity.name) continue
        if (a.state === 'approved' && (await this.#use(a, held))) return
        if (a.state === 'pending' && this.#now() < Date.parse(a.expiresAt)) pending ??= a
        this.#refuseFallback(a, request.method)
      }
      const a = pending ?? (await this.#create(held, binding))
      if (settings.wait === 'retry' || this.#closing) throw this.#pendingError(a, held)
      held.link({ id: a.id, event: 'requested', requestId: a.requestId })
      const outcome = await this.#waitFor(a.id, held)
      if (outcome === 'again') continue
      if (outcome.state === 'approved' && (await this.#use(outcome, held))) return
      if (outcome.state === 'denied') throw this.#deniedError(outcome)
      if (outcome.state === 'expired') throw this.#expiredError(outcome)
      // approved but the use went to another identical request: ask again
    }
    throw new GatewayError('GW_INTERNAL', 'Gatehouse could not settle the approval of this request')
  }

  /**
   * kubectl retries an exec, attach or port-forward over SPDY (POST) at once when its WebSocket
   * upgrade (GET) is refused: the same operation, so it gets the same answer, not a new
   * approval to wait for, when it comes within FALLBACK_MS of the denial or expiry.
   */
  #refuseFallback(a: ApprovalRecord, method: string): void {
    if (a.state !== 'denied' && a.state !== 'expired') return
    if (a.bound?.method !== 'CONNECT' || a.request.method === method) return
    const ended =
      a.state === 'denied' ? Date.parse(a.decisions.at(-1)?.at ?? '') : Date.parse(a.expiresAt)
    if (!(this.#now() - ended < FALLBACK_MS)) return
    throw a.state === 'denied' ? this.#deniedError(a) : this.#expiredError(a)
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
        breakGlass: this.#o.config.breakGlass,
        nonHuman: this.#o.config.nonHuman,
        ...this.#o.approvers,
        now: this.#now(),
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

  /** A new pending approval; one at a time per identity, within its pending limit. */
  async #create(held: HeldRequest, binding: string): Promise<ApprovalRecord> {
    const who = held.request.identity.name
    const before = this.#creating.get(who) ?? Promise.resolve()
    const mine = before.then(() => this.#createNow(held, binding))
    const settled = mine.catch(() => undefined)
    this.#creating.set(who, settled)
    try {
      return await mine
    } finally {
      if (this.#creating.get(who) === settled) this.#creating.delete(who)
    }
  }

  async #createNow(held: HeldRequest, binding: string): Promise<ApprovalRecord> {
    const who = held.request.identity
    await this.#checkPendingLimit(who)
    const a = await newApproval(held.request, { now: this.#now(), dryRun: held.dryRun })
    if (a.binding !== binding) throw new Error('the binding changed while the approval was made')
    await this.#o.store.insertApproval(a)
    this.#step(a, 'requested', { actor: who })
    this.#o.logger.info(
      { approval: a.id, identity: who.name, request: a.request.summary, wait: a.settings.wait },
      'approval requested',
    )
    return a
  }

  /** One requester cannot flood the approvers: refused with 429 past maxPendingPerIdentity. */
  async #checkPendingLimit(who: Identity): Promise<void> {
    const max = this.#o.config.maxPendingPerIdentity ?? 20
    const q: ApprovalQuery = {
      state: 'pending',
      expiresAfterMs: this.#now(),
      visibleTo: { approverSets: [], requester: who.name },
    }
    const pending = await this.#o.store.countApprovals(q)
    if (pending < max) return
    const oldest = await this.#o.store.queryApprovals({ ...q, limit: max }).then((l) => l.at(-1))
    const until = oldest ? Date.parse(oldest.expiresAt) : this.#now() + 1000
    const wait = Math.min(
      MAX_LIMIT_RETRY_SECONDS,
      Math.max(1, Math.ceil((until - this.#now()) / 1000)),
    )
    throw new GatewayError(
      'GW_APPROVAL_LIMIT',
      `${escapeInvisible(who.name)} already has ${pending} pending approvals (approvals.maxPendingPerIdentity: ${max}); retry once one of them is decided or has expired`,
      { retryAfterSeconds: wait },
    )
  }

  /** Spends one use of an approved approval on this request; false when none is left. */
  async #use(a: ApprovalRecord, held: HeldRequest): Promise<boolean> {
    const requestId = held.request.id
    for (let cur: ApprovalRecord | undefined = a; cur; cur = await this.get(a.id)) {
      if (cur.state !== 'approved') return false
      const now = this.#now()
      const expired = now >= Date.parse(cur.usableUntil ?? cur.expiresAt)
      const next: ApprovalRecord = {
        ...cur,
        uses: expired ? cur.uses : [...cur.uses, { requestId, at: new Date(now).toISOString() }],
        version: cur.version + 1,
      }
      if (expired || next.uses.length >= cur.settings.reuseUses) next.state = 'used'
      if (!(await this.#o.store.updateApproval(next))) continue
      if (expired) return false
      held.link({ id: a.id, event: 'used', requestId: a.requestId })
      this.#step(next, 'used', { requestId })
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
  async #waitFor(id: string, held: HeldRequest): Promise<ApprovalRecord | 'again'> {
    const gone = clientGone(held)
    try {
      return await this.#waitLoop(id, held, gone.promise)
    } finally {
      gone.stop()
    }
  }

  async #waitLoop(
    id: string,
    held: HeldRequest,
    gone: Promise<never>,
  ): Promise<ApprovalRecord | 'again'> {
    for (;;) {
      const a = await this.get(id)
      if (!a) return 'again'
      if (a.state !== 'pending') return a
      if (this.#now() >= Date.parse(a.expiresAt)) {
        await this.#expire(a)
        continue
      }
      if (this.#closing) throw this.#pendingError(a, held)
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
          { approval: id, requestId: held.request.id },
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
      .broadcastApprovalChange(a.id)
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

  #pendingError(a: ApprovalRecord, held: HeldRequest): GatewayError {
    held.link({ id: a.id, event: 'requested', requestId: a.requestId })
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
      `approval ${a.id} was denied by ${escapeInvisible(d?.by ?? 'an approver')}: ${quote(d?.comment ?? '')}`,
    )
  }

  #expiredError(a: ApprovalRecord): GatewayError {
    return new GatewayError(
      'GW_APPROVAL_EXPIRED',
      `approval ${a.id} expired at ${a.expiresAt} without a decision (${a.reason ?? 'nobody decided'}); send the request again to ask anew`,
    )
  }
}
