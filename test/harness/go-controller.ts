// The client-go controller of test/harness/go/controller as a child process: its JSON lines
// (events of its ConfigMap and Secret informers, and the requests it sent) collected, and the
// informers' view of the namespace rebuilt from them.
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { goClient } from './go-clients.ts'
import { startProcess, type ManagedProcess } from './processes.ts'

export interface ControllerLine {
  event: 'start' | 'add' | 'update' | 'delete' | 'synced' | 'request' | 'watch-error' | 'stopped'
  kind?: 'ConfigMap' | 'Secret'
  name?: string
  rv?: string
  initial?: boolean
  data?: Record<string, string>
  detail?: string
}

export interface RunningController {
  readonly process: ManagedProcess
  readonly lines: ControllerLine[]
  /** What the informers hold now: `Kind/name` → data. */
  view(): Map<string, Record<string, string>>
  /** Waits until `pred` holds over the lines seen so far. */
  until(what: string, pred: (lines: ControllerLine[]) => boolean, timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

export async function startController(opts: {
  kubeconfig: string
  namespace: string
  dir: string
  name: string
  watchList?: boolean
}): Promise<RunningController> {
  const binary = await goClient('controller')
  const proc = startProcess(
    opts.name,
    binary,
    ['--kubeconfig', opts.kubeconfig, '--namespace', opts.namespace, '-v=2'],
    {
      logFile: join(opts.dir, `${opts.name}.log`),
      env: { ...process.env, KUBE_FEATURE_WatchListClient: String(opts.watchList ?? true) },
    },
  )
  const lines: ControllerLine[] = []
  createInterface({ input: proc.child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as ControllerLine)
    } catch {
      /* not ours */
    }
  })
  return {
    process: proc,
    lines,
    view() {
      const m = new Map<string, Record<string, string>>()
      for (const l of lines) {
        const key = `${l.kind}/${l.name}`
        if (l.event === 'add' || l.event === 'update') m.set(key, l.data ?? {})
        if (l.event === 'delete') m.delete(key)
      }
      return m
    },
    async until(what, pred, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (!pred(lines)) {
        if (proc.child.exitCode !== null)
          throw new Error(`the controller exited (${proc.child.exitCode}) waiting for ${what}`)
        if (Date.now() > deadline)
          throw new Error(
            `timed out waiting for ${what}; last lines:\n${lines
              .slice(-15)
              .map((l) => JSON.stringify(l))
              .join('\n')}`,
          )
        await sleep(50)
      }
    },
    stop: () => proc.stop(),
  }
}
