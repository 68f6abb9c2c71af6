// The temp folder of one test run: run-tests.ts points TMPDIR at a folder of its own, so that
// everything the run's tests and processes create there is the run's, and checks at the end
// that nothing is left in it, nor under a test prefix in the temp folder itself.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Every test directory's name starts with one of these (temp-dir.ts refuses others). */
export const TEMP_PREFIXES = ['gatehouse-', 'gh-', 'gw-'] as const

export const KEEP_FAILED_ENV = 'GATEHOUSE_KEEP_FAILED'

export interface RunTempFolder {
  readonly root: string
  /**
   * Problems to report (empty when clean). The run's folder is removed, unless the run failed
   * and GATEHOUSE_KEEP_FAILED=1 (then what it holds is kept and listed, not a further failure).
   */
  finish(runFailed: boolean): { failures: string[]; notes: string[]; kept: boolean }
}

const withPrefix = (dir: string): Set<string> =>
  new Set(readdirSync(dir).filter((e) => TEMP_PREFIXES.some((p) => e.startsWith(p))))

/** Another test run on this machine (a second worktree's), whose directories are not ours. */
function otherTestRun(): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (cmd.some((a) => a.endsWith('run-tests.js') || a === '--test')) return true
    } catch {
      /* exited meanwhile */
    }
  }
  return false
}

/** Call first: sets process.env.TMPDIR (inherited by every process the run starts). */
export function openRunTempFolder(): RunTempFolder {
  const outer = tmpdir()
  const before = withPrefix(outer)
  const root = mkdtempSync(join(outer, 'gatehouse-run-'))
  process.env['TMPDIR'] = root
  return {
    root,
    finish(runFailed) {
      const failures: string[] = []
      const notes: string[] = []
      const left = readdirSync(root).map((e) => join(root, e))
      const keep = runFailed && process.env[KEEP_FAILED_ENV] === '1' && left.length > 0
      if (keep) notes.push(`kept for the failed run in ${root}:\n  ${left.join('\n  ')}`)
      else {
        if (left.length) failures.push(`left in the run's temp folder:\n  ${left.join('\n  ')}`)
        rmSync(root, { recursive: true, force: true })
      }
      const appeared = [...withPrefix(outer)]
        .filter((e) => !before.has(e) && join(outer, e) !== root)
        .map((e) => join(outer, e))
      if (appeared.length) {
        const what = `appeared in ${outer} during the run (outside TMPDIR):\n  ${appeared.join('\n  ')}`
        if (otherTestRun()) notes.push(`${what}\n  (another test run is active on this machine)`)
        else failures.push(what)
      }
      return { failures, notes, kept: keep }
    },
  }
}
