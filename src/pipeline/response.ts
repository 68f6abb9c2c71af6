// The response side of the plain chain: each response-side feature (masking, pod-log
// recording, the audit record's body head, Warning headers) is a ResponseFilter, created per
// request by the runner from the list in chain.ts, in that order, and handed to the forward
// stage, which only forwards: src/upstream/forward.ts calls the filters' hooks at the points of
// the response they name. The shape follows Envoy's encoder filters: each filter sees the head,
// then the body; the runner ends every filter once the response is over, however it ended.
import type { BodyRewrite, ResponseHead, ResponseHooks } from '../upstream/forward.ts'
import type { RequestContext } from './context.ts'

export type { BodyRewrite, ResponseHead } from '../upstream/forward.ts'

/** The response as it went, for filters that keep something of it. */
export interface ResponseOutcome {
  status: number
  responseBytes: number
}

/** One response-side feature for one request; every hook is optional. */
export interface ResponseFilter {
  /** The upstream request headers to send instead of these. */
  requestHeaders?(headers: readonly string[]): string[]
  /**
   * The API server answered: a body rewrite for this response, if any. Throwing a GatewayError
   * refuses the response before a byte of it went out (the client gets that Status).
   */
  onHead?(head: ResponseHead): BodyRewrite | undefined
  /** Every body chunk as the API server sent it, in order. */
  onUpstreamData?(chunk: Buffer): void
  /** Every body chunk as the client receives it (after any rewrite), in order. */
  onClientData?(chunk: Buffer): void
  /** `Warning` texts for the head; `complete`: the whole body was read before the head went out. */
  warnings?(complete: boolean): readonly string[]
  /** The response ended (`outcome` undefined: it failed before the API server answered). */
  onEnd?(outcome: ResponseOutcome | undefined): Promise<void> | void
}

/** Lets a filter cut the response short (a recording limit): the client sees it end. */
export interface ResponseControl {
  abort(): void
}

/** A response-side feature, as chain.ts lists it: makes the request's filter, or none. */
export interface ResponseFilterFactory {
  readonly name: string
  create(
    ctx: RequestContext,
    control: ResponseControl,
  ): ResponseFilter | undefined | Promise<ResponseFilter | undefined>
}

/** The filters of one request, in the chain's order, as the forwarder calls them. */
export class ResponseFilters implements ResponseHooks {
  readonly #filters: readonly ResponseFilter[]
  #abort: (() => void) | undefined
  #aborted = false

  constructor(filters: readonly ResponseFilter[]) {
    this.#filters = filters
  }

  static async create(
    factories: readonly ResponseFilterFactory[],
    ctx: RequestContext,
  ): Promise<ResponseFilters> {
    const filters: ResponseFilter[] = []
    const set = new ResponseFilters(filters)
    const control: ResponseControl = { abort: () => set.#cut() }
    try {
      for (const f of factories) {
        const filter = await f.create(ctx, control)
        if (filter) filters.push(filter)
      }
    } catch (e) {
      await set.end(undefined)
      throw e
    }
    return set
  }

  /** Set by the forwarder once the response started: what `abort()` of a filter does. */
  onAbort(abort: () => void): void {
    this.#abort = abort
    if (this.#aborted) abort()
  }

  #cut(): void {
    this.#aborted = true
    this.#abort?.()
  }

  requestHeaders(headers: readonly string[]): readonly string[] {
    let out = headers
    for (const f of this.#filters) if (f.requestHeaders) out = f.requestHeaders(out)
    return out
  }

  /** The body rewrite of this response; at most one filter rewrites a body. */
  onHead(head: ResponseHead): BodyRewrite | undefined {
    let rewrite: BodyRewrite | undefined
    for (const f of this.#filters) {
      const r = f.onHead?.(head)
      if (r && rewrite) throw new Error('two response filters rewrite the same body')
      rewrite ??= r
    }
    return rewrite
  }

  onUpstreamData(chunk: Buffer): void {
    for (const f of this.#filters) f.onUpstreamData?.(chunk)
  }

  onClientData(chunk: Buffer): void {
    for (const f of this.#filters) f.onClientData?.(chunk)
  }

  warnings(complete: boolean): string[] {
    return this.#filters.flatMap((f) => f.warnings?.(complete) ?? [])
  }

  /** Ends every filter, in order; one failing does not keep the others from ending. */
  async end(outcome: ResponseOutcome | undefined): Promise<void> {
    const failures: unknown[] = []
    for (const f of this.#filters) {
      try {
        await f.onEnd?.(outcome)
      } catch (e) {
        failures.push(e)
      }
    }
    if (failures.length === 1)
      throw failures[0] instanceof Error ? failures[0] : new Error(String(failures[0]))
    if (failures.length > 1) throw new AggregateError(failures, 'response filters failed to end')
  }
}
