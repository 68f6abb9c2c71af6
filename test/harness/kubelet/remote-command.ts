// What every exec/attach transport (WebSocket or SPDY) gives the fake container, and the
// exit Status it reports on the error channel, as the kubelet does.
import { PassThrough } from 'node:stream'
import { runCommand, type ProcessIO, type TerminalSize } from './shell.ts'

export interface ExecOptions {
  stdin: boolean
  stdout: boolean
  stderr: boolean
  tty: boolean
}

/** Kubelet query parameters (pkg/kubelet/server/remotecommand: input, output, error, tty). */
export function execOptionsFrom(query: URLSearchParams): ExecOptions {
  const on = (k: string): boolean => query.get(k) === '1' || query.get(k) === 'true'
  const tty = on('tty')
  return { stdin: on('input'), stdout: on('output'), stderr: on('error') && !tty, tty }
}

/**
 * The v4+ error-channel payload: a metav1.Status. kubectl turns NonZeroExitCode into
 * "command terminated with exit code N" and exits with N.
 */
export function exitStatus(code: number, argv: string[]): Record<string, unknown> {
  if (code === 0) return { metadata: {}, status: 'Success' }
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  }
}

export interface CommandTransport {
  writeStdout(data: Buffer): Promise<void>
  writeStderr(data: Buffer): Promise<void>
  /** Report the exit status and close the connection. */
  finish(exitCode: number, argv: string[]): Promise<void>
}

/** Glue between a transport and the fake container; owns stdin and the terminal size. */
export class CommandSession {
  readonly stdin: PassThrough | null
  #size: TerminalSize | undefined
  readonly #abort = new AbortController()
  readonly options: ExecOptions

  constructor(options: ExecOptions) {
    this.options = options
    this.stdin = options.stdin ? new PassThrough() : null
  }

  resize(size: TerminalSize): void {
    this.#size = size
  }

  clientGone(): void {
    this.#abort.abort()
    this.stdin?.end()
  }

  async run(
    argv: string[],
    env: Record<string, string>,
    transport: CommandTransport,
  ): Promise<void> {
    const io: ProcessIO = {
      tty: this.options.tty,
      stdin: this.stdin,
      writeStdout: (d) => (this.options.stdout ? transport.writeStdout(d) : Promise.resolve()),
      writeStderr: (d) => (this.options.stderr ? transport.writeStderr(d) : Promise.resolve()),
      size: () => this.#size,
      env: this.options.tty ? { ...env, TERM: 'xterm' } : env,
      signal: this.#abort.signal,
    }
    let code: number
    try {
      code = await runCommand(argv, io)
    } catch {
      code = 1
    }
    if (this.#abort.signal.aborted) return
    await transport.finish(code, argv)
  }
}
