// Terminal programs (k9s) driven through tmux, as a person at a terminal would: a private tmux
// server per test file (its own socket in the test's directory, no user configuration), one
// session per program, keys sent with send-keys and the screen read with capture-pane. kill()
// ends the server and everything in it.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

export class TmuxServer {
  readonly socket: string
  readonly #conf: string

  constructor(dir: string) {
    // in the test's directory (not /tmp/tmux-UID, which a run's temp check does not see)
    this.socket = join(dir, 'tmux.sock')
    this.#conf = join(dir, 'tmux.conf')
    // a program that exits leaves its last screen to read
    writeFileSync(this.#conf, 'set -g remain-on-exit on\nset -g history-limit 5000\n')
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, '-f', this.#conf, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  }

  /** Starts `argv` with `env` (on top of a minimal one) in a new session of cols x rows. */
  start(
    name: string,
    argv: string[],
    opts: { env: Record<string, string>; cols?: number; rows?: number },
  ): TmuxPane {
    const env = {
      TERM: 'xterm-256color',
      LANG: 'C.UTF-8',
      HOME: process.env['HOME'] ?? '/root',
      ...opts.env,
    }
    const cmd = [
      'exec',
      'env',
      '-i',
      ...Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)),
      ...argv.map(quote),
    ].join(' ')
    this.tmux(
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      String(opts.cols ?? 200),
      '-y',
      String(opts.rows ?? 50),
      cmd,
    )
    return new TmuxPane(this, name)
  }

  kill(): void {
    try {
      this.tmux('kill-server')
    } catch {
      /* no server (never started, or already gone) */
    }
  }
}

export class TmuxPane {
  readonly #server: TmuxServer
  readonly name: string

  constructor(server: TmuxServer, name: string) {
    this.#server = server
    this.name = name
  }

  /** The visible screen, as text. */
  screen(): string {
    return this.#server.tmux('capture-pane', '-p', '-t', this.name)
  }

  /** Whether the program in the pane has exited (remain-on-exit keeps the pane). */
  dead(): boolean {
    return (
      this.#server.tmux('display-message', '-p', '-t', this.name, '#{pane_dead}').trim() === '1'
    )
  }

  /** Keys as tmux names them (`Enter`, `Escape`, `C-c`) or literal text with `literal`. */
  keys(...keys: string[]): void {
    this.#server.tmux('send-keys', '-t', this.name, ...keys)
  }

  type(text: string): void {
    this.#server.tmux('send-keys', '-t', this.name, '-l', text)
  }

  async waitFor(what: RegExp | ((screen: string) => boolean), timeoutMs = 30_000): Promise<string> {
    const ok = typeof what === 'function' ? what : (s: string) => what.test(s)
    const deadline = Date.now() + timeoutMs
    let screen = ''
    for (;;) {
      screen = this.screen()
      if (ok(screen)) return screen
      if (Date.now() > deadline)
        throw new Error(
          `${this.name}: timed out waiting for ${String(what)}; the screen:\n${screen}`,
        )
      await sleep(200)
    }
  }
}
