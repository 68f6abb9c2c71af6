// A stage does one thing to the request context, or throws a GatewayError to refuse it.
import type { RequestContext } from './context.ts'
import type { ResponseFilterFactory, ResponseFilters } from './response.ts'

export type StageName =
  | 'admit'
  | 'route'
  | 'requestInfo'
  | 'authenticate'
  | 'upgrade'
  | 'limit'
  | 'readBody'
  | 'authorize'
  | 'hold'
  | 'impersonate'
  | 'journal'
  | 'forward'

export interface Stage {
  readonly name: StageName
  run(ctx: RequestContext): Promise<void> | void
}

/** The last stage of a chain: the only one that talks to the cluster. */
export interface Terminal {
  readonly name: StageName
  run(ctx: RequestContext, response: ResponseFilters): Promise<void>
}

/** One request class's way through the pipeline (chain.ts lists them). */
export interface Chain {
  readonly name: 'plain' | 'upgrade'
  readonly stages: readonly Stage[]
  /** The response side, in order; the runner makes each request's filters from these. */
  readonly filters: readonly ResponseFilterFactory[]
  readonly terminal: Terminal
}
