// `when` conditions in CEL, the expression language of Kubernetes' own admission policies.
// Compiled (parsed and type-checked) once per policy reload; evaluated per request against
// plain JSON values. A condition that fails at run time (a missing field, a wrong type) is an
// error, never silently false: the engine decides what an error means for the rule (a deny
// rule applies, an allow rule does not: fail closed).
import { Environment } from '@marcbachmann/cel-js'

/** The variables a condition can read. */
export interface CelInput {
  request: Record<string, unknown>
  identity: Record<string, unknown>
  /** What a write would store (update, patch: the API server's dry run; create: the body). */
  object: unknown
  /** What is stored now (update, patch, delete); null otherwise. */
  oldObject: unknown
}

export type CompiledCondition = (
  input: CelInput,
) => { ok: true; value: boolean } | { ok: false; error: string }

const environment = new Environment({
  enableOptionalTypes: true,
  // Bounds the work per request no matter what a policy author writes.
  limits: {
    maxAstNodes: 2000,
    maxDepth: 50,
    maxListElements: 200,
    maxMapEntries: 200,
    maxCallArguments: 16,
  },
})
  .registerVariable('request', 'map')
  .registerVariable('identity', 'map')
  .registerVariable('object', 'dyn')
  .registerVariable('oldObject', 'dyn')

export class ConditionError extends Error {}

/** Parses and type-checks; throws ConditionError with a message for the policy author. */
export function compileCondition(expression: string): CompiledCondition {
  let program: ReturnType<typeof environment.parse>
  try {
    program = environment.parse(expression)
  } catch (e) {
    throw new ConditionError(`invalid CEL: ${firstLine(e)}`)
  }
  const checked = program.check() as { valid: boolean; type?: string; error?: unknown }
  if (!checked.valid)
    throw new ConditionError(
      `invalid CEL: ${firstLine(checked.error)} (variables: request, identity, object, oldObject)`,
    )
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    throw new ConditionError(`the condition must be a bool, this one is a ${checked.type}`)
  return (input) => {
    try {
      const value: unknown = program(input)
      if (typeof value !== 'boolean')
        return { ok: false, error: `the condition gave a ${typeof value}, not a bool` }
      return { ok: true, value }
    } catch (e) {
      return { ok: false, error: firstLine(e) }
    }
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : describe(e)
  return msg.split('\n')[0]!.slice(0, 300)
}

function describe(e: unknown): string {
  if (typeof e === 'object' && e) {
    const message = (e as { message?: unknown }).message
    return typeof message === 'string' ? message : JSON.stringify(e)
  }
  return String(e)
}
