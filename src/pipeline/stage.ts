// A stage does one thing to the request context, or throws a GatewayError to refuse it.
import type { RequestContext } from './context.ts'

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
