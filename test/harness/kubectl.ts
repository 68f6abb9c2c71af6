// Runs the real client binaries (kubectl of three versions, helm) and captures what a user sees.
import { spawn } from 'node:child_process'
import { helmPath, kubectlPath, type KubectlVersion } from './binaries.ts'

export interface CommandResult {
  stdout: string
  stderr: string
  code: number | null
}

export interface RunOptions {
  kubeconfig: string
  stdin?: string | Buffer
  env?: Record<string, string>
  timeoutMs?: number
  /** Called with each stdout chunk, e.g. to react to `port-forward` becoming ready. */
  onStdout?: (chunk: string) => void
  /** Called with each stderr chunk, e.g. to follow a -v=6 request log. */
  onStderr?: (chunk: string) => void
  signal?: AbortSignal
}

const passThrough = (...names: string[]): Record<string, string> =>
  Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]]] : [])))

export function runBinary(
  binary: string,
  args: string[],
  opts: RunOptions,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? '/root',
        KUBECONFIG: opts.kubeconfig,
        // kubectl and helm cache discovery under HOME; keep each run independent of the last.
        KUBECACHEDIR: `${opts.kubeconfig}.cache`,
        HELM_CACHE_HOME: `${opts.kubeconfig}.helm/cache`,
        HELM_CONFIG_HOME: `${opts.kubeconfig}.helm/config`,
        HELM_DATA_HOME: `${opts.kubeconfig}.helm/data`,
        // the run's temp folder (run-tests.ts), and the native-module hook of test:matrix
        ...passThrough('TMPDIR', 'NODE_OPTIONS', 'GATEHOUSE_NATIVE_MODULES'),
        ...opts.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      opts.onStdout?.(d)
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      opts.onStderr?.(d)
    })
    const timer = setTimeout(() => {
      stderr += `\n[harness] killed after ${opts.timeoutMs ?? 60_000} ms`
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      if ((e as NodeJS.ErrnoException).code === 'ABORT_ERR') resolve({ stdout, stderr, code: null })
      else reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ stdout, stderr, code })
    })
    child.stdin.on('error', () => undefined)
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin)
    else child.stdin.end()
  })
}

export function kubectl(
  version: KubectlVersion,
  args: string[],
  opts: RunOptions,
): Promise<CommandResult> {
  return runBinary(kubectlPath(version), args, opts)
}

export function helm(args: string[], opts: RunOptions): Promise<CommandResult> {
  return runBinary(helmPath(), args, opts)
}
