// Real Go programs the e2e tests drive (Dex, a client-go controller, k9s), built from the Go
// module proxy by scripts/build-go-clients.sh out of the wrapper modules in test/harness/go/.
// `npm run prereqs` builds them all; a test that finds one missing builds it here (printing the
// build's progress), which can take long for big ones: give the hook a generous timeout.
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './binaries.ts'

export type GoClient = 'dex' | 'controller' | 'k9s'

const SCRIPT = join(repoRoot, 'scripts', 'build-go-clients.sh')

/** Where the binary of `name` is (or will be) in the cache, keyed by its version. */
export function goClientPath(name: GoClient): string {
  return execFileSync('bash', [SCRIPT, '--path', name], { encoding: 'utf8' }).trim()
}

function built(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The binary of `name`, built first when the cache lacks it (progress goes to stderr). */
export async function goClient(name: GoClient): Promise<string> {
  const path = goClientPath(name)
  if (built(path)) return path
  process.stderr.write(`[harness] ${name} is not built yet: building it from the Go module proxy\n`)
  const child = spawn('bash', [SCRIPT, name], { stdio: ['ignore', 'inherit', 'inherit'] })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  if (code !== 0 || !built(path))
    throw new Error(`building ${name} failed (exit ${code}); see the [go ${name}] lines above`)
  return path
}
