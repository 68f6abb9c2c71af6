// How many exec, attach and port-forward sessions one identity may have open at once through
// this replica (sessions.maxPerIdentity): each holds two connections, a tap and a recording, so
// one caller opening a thousand of them must not exhaust the gateway (issue 18). Over the bound
// the upgrade is refused before it reaches the cluster, with 429 and Retry-After.
import { GatewayError } from '../errors/index.ts'

export class SessionSlots {
  readonly #max: number
  readonly #open = new Map<string, number>()

  /** max 0: no bound. */
  constructor(max: number) {
    this.#max = max
  }

  /** Sessions open now for `identity`. */
  count(identity: string): number {
    return this.#open.get(identity) ?? 0
  }

  /** Takes a slot or throws GW_SESSION_LIMIT; returns its release (idempotent). */
  acquire(identity: string): () => void {
    const n = this.count(identity)
    if (this.#max > 0 && n >= this.#max)
      throw new GatewayError(
        'GW_SESSION_LIMIT',
        `${identity} already has ${n} exec, attach and port-forward sessions open (the limit is ${this.#max}, sessions.maxPerIdentity); close one and retry`,
      )
    this.#open.set(identity, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = this.count(identity) - 1
      if (left > 0) this.#open.set(identity, left)
      else this.#open.delete(identity)
    }
  }
}
