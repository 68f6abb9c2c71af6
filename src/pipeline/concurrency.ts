// Bounds on concurrent work, so that one caller cannot exhaust the gateway: per identity and
// for the whole process, counted apart for short requests and streams (watches, log follows,
// exec/attach/port-forward handshakes: kube-apiserver's long-running requests). The API
// server's own in-flight limits stay the backstop behind Gatehouse's account.

export interface ConcurrencyLimits {
  perIdentityRequests: number
  perIdentityStreams: number
  requests: number
  streams: number
}

interface Counts {
  requests: number
  streams: number
}

export type Admission =
  { ok: true; release: () => void } | { ok: false; reason: string; scope: 'identity' | 'process' }

export class ConcurrencyGate {
  readonly #limits: ConcurrencyLimits
  readonly #byIdentity = new Map<string, Counts>()
  readonly #total: Counts = { requests: 0, streams: 0 }

  constructor(limits: ConcurrencyLimits) {
    this.#limits = limits
  }

  /** Takes a slot, or says which bound is full. `release` is idempotent. */
  acquire(identity: string, stream: boolean): Admission {
    const kind = stream ? 'streams' : 'requests'
    const own = this.#byIdentity.get(identity) ?? { requests: 0, streams: 0 }
    const perIdentity = stream ? this.#limits.perIdentityStreams : this.#limits.perIdentityRequests
    const total = stream ? this.#limits.streams : this.#limits.requests
    if (own[kind] >= perIdentity)
      return {
        ok: false,
        scope: 'identity',
        reason: `this identity already has ${own[kind]} concurrent ${kind} through Gatehouse (its bound: limits.concurrency.perIdentity${stream ? 'Streams' : 'Requests'}); retry when some have finished`,
      }
    if (this.#total[kind] >= total)
      return {
        ok: false,
        scope: 'process',
        reason: `this Gatehouse replica is at its bound of ${total} concurrent ${kind}; retry shortly`,
      }
    own[kind]++
    this.#total[kind]++
    this.#byIdentity.set(identity, own)
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        own[kind]--
        this.#total[kind]--
        if (own.requests === 0 && own.streams === 0) this.#byIdentity.delete(identity)
      },
    }
  }

  /** What readyz reports; `saturated` names a process-wide bound that is full. */
  stats(): { requests: number; streams: number; identities: number; saturated?: string } {
    const saturated =
      this.#total.requests >= this.#limits.requests
        ? 'concurrent requests'
        : this.#total.streams >= this.#limits.streams
          ? 'concurrent streams'
          : undefined
    return {
      requests: this.#total.requests,
      streams: this.#total.streams,
      identities: this.#byIdentity.size,
      ...(saturated ? { saturated } : {}),
    }
  }
}
