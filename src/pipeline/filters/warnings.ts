// Response filter: the Warning headers stages asked for (shadow-mode outcomes, policy notes):
// kubectl prints each as `Warning: ...`.
import type { ResponseFilterFactory } from '../response.ts'

export const stageWarnings: ResponseFilterFactory = {
  name: 'warnings',
  create: (ctx) => (ctx.warnings.length ? { warnings: () => ctx.warnings } : undefined),
}
