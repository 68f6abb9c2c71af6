// Child processes of the harness: logged to files, killed with their parent, never left behind.
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, createWriteStream } from 'node:fs'

export interface ManagedProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly logFile: string
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>
  stop(graceMs?: number): Promise<void>
}

const live = new Set<ManagedProcess>()

// setpriv --pdeathsig makes the kernel kill the child when this Node process dies, even by
// SIGKILL, so a crashed test run cannot leave etcd or kube-apiserver running.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => {
  try {
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
})

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ManagedProcess {
  const [cmd, argv] = SETPRIV
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]]
    : [command, args]
  const log = createWriteStream(opts.logFile, { flags: 'a' })
  const child = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  })
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code))
    child.once('error', () => resolve(null))
  })
  const proc: ManagedProcess = {
    name,
    child,
    logFile: opts.logFile,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      live.delete(proc)
      log.end()
    },
  }
  live.add(proc)
  void exited.then(() => live.delete(proc))
  return proc
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()))
}

// Last resort on a normal or error exit of this process.
process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL')
})
