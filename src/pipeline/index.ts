export type { Decision, RequestContext } from './context.ts'
export { respondWithError, runStages, type RunnerDeps } from './runner.ts'
export type { Stage, StageName } from './stage.ts'
export { buildChain } from './chain.ts'
