// "Exactly one of these keys": a strict object whose keys are all optional, refined to one
// present. Unlike a union of single-key objects, errors point inside the chosen variant
// (authenticators.0.oidc.audiences: ...) instead of a bare "Invalid input".
import { z } from 'zod'

export function exactlyOneOf<Shape extends Record<string, z.ZodType>>(shape: Shape) {
  const keys = Object.keys(shape)
  const optional = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof Shape]: z.ZodOptional<Shape[K]>
  }
  return z.strictObject(optional).superRefine((value, ctx) => {
    const present = keys.filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one of ${keys.join(', ')}${present.length ? `, got ${present.join(' and ')}` : ''}`,
      })
    }
  })
}
