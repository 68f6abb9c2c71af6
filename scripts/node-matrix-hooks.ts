// Loaded with --import by every process of a `npm run test:matrix` run (scripts/test-matrix.ts):
// resolves the project's native modules to the copy built for this Node version
// (GATEHOUSE_NATIVE_MODULES), for import and require alike; everything else resolves as usual.
import module from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const modules = process.env['GATEHOUSE_NATIVE_MODULES']
const NATIVE = new Set(['better-sqlite3'])

type Resolve = (
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => unknown,
) => unknown

// module.registerHooks: Node 22.15+ and 24 (the versions the matrix runs); not in @types/node 20.
const registerHooks = (module as unknown as { registerHooks?: (h: { resolve: Resolve }) => void })
  .registerHooks
if (modules && registerHooks)
  registerHooks({
    resolve(specifier, context, next) {
      if (!NATIVE.has(specifier)) return next(specifier, context)
      const url = pathToFileURL(join(modules, specifier, 'lib', 'index.js')).href
      return { url, format: 'commonjs', shortCircuit: true }
    },
  })
else if (modules)
  throw new Error('node-matrix-hooks needs module.registerHooks (Node 22.15 or newer)')
