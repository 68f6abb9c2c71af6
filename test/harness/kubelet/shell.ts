// A small deterministic "container": the commands behind the fake kubelet's exec and attach.
//
// Real runtimes cannot run here, so tests need a process whose output and exit code are exact.
// Supported (argv or `sh -c` script, statements split by ';' or newlines, `>&2` redirects):
//   echo [-n] ARGS   printf FORMAT [ARGS] (\n \t \\ %s %%)   cat   env   sleep SECONDS
//   exit N   true   false   seq N
//   bytes N [CHAR]   (N bytes of CHAR, for large streams)   stty size   tty   hostname
//   sh | bash        (interactive: prompt '# ' on a TTY, reads commands line by line)
//   a && b || c   exec CMD   command -v NAME   >/dev/null   (as in k9s's `sh -c` to open a shell)
// With a TTY the fake emulates a cooked-mode terminal: input is echoed, '\n' becomes '\r\n',
// stderr goes to stdout, Ctrl-C interrupts and Ctrl-D at an empty line is end of input.
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'

export interface TerminalSize {
  width: number
  height: number
}

export interface ProcessIO {
  readonly tty: boolean
  readonly stdin: Readable | null
  /** Resolves once the bytes are accepted by the transport (backpressure). */
  writeStdout(data: Buffer): Promise<void>
  writeStderr(data: Buffer): Promise<void>
  size(): TerminalSize | undefined
  readonly env: Readonly<Record<string, string>>
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal
}

class Interrupted extends Error {}

/** Reads stdin as a byte stream or, with a TTY, as cooked lines with echo. */
class Input {
  #buffered = ''
  #eof = false
  readonly #iterator: AsyncIterator<Buffer> | null
  private readonly io: ProcessIO

  constructor(io: ProcessIO) {
    this.io = io
    this.#iterator = io.stdin ? (io.stdin[Symbol.asyncIterator]() as AsyncIterator<Buffer>) : null
  }

  /** Raw chunks, for `cat` without a TTY. */
  async nextChunk(): Promise<Buffer | null> {
    if (this.#buffered) {
      const b = Buffer.from(this.#buffered, 'latin1')
      this.#buffered = ''
      return b
    }
    if (!this.#iterator || this.#eof) return null
    const r = await this.#iterator.next()
    if (r.done) {
      this.#eof = true
      return null
    }
    return r.value
  }

  /** One line without its terminator; null at end of input. */
  async readLine(): Promise<string | null> {
    if (!this.io.tty) {
      for (;;) {
        const nl = this.#buffered.indexOf('\n')
        if (nl >= 0) {
          const line = this.#buffered.slice(0, nl)
          this.#buffered = this.#buffered.slice(nl + 1)
          return line
        }
        const chunk = await this.#rawNext()
        if (chunk === null) {
          if (this.#buffered === '') return null
          const line = this.#buffered
          this.#buffered = ''
          return line
        }
        this.#buffered += chunk.toString('latin1')
      }
    }
    let line = ''
    for (;;) {
      while (this.#buffered.length > 0) {
        const ch = this.#buffered[0]!
        this.#buffered = this.#buffered.slice(1)
        if (ch === '\r' || ch === '\n') {
          await this.io.writeStdout(Buffer.from('\r\n'))
          return line
        }
        if (ch === '\x03') {
          await this.io.writeStdout(Buffer.from('^C\r\n'))
          throw new Interrupted()
        }
        if (ch === '\x04') {
          if (line === '') return null
          continue
        }
        if (ch === '\x7f' || ch === '\b') {
          if (line.length > 0) {
            line = line.slice(0, -1)
            await this.io.writeStdout(Buffer.from('\b \b'))
          }
          continue
        }
        line += ch
        await this.io.writeStdout(Buffer.from(ch, 'latin1'))
      }
      const chunk = await this.#rawNext()
      if (chunk === null) return line === '' ? null : line
      this.#buffered += chunk.toString('latin1')
    }
  }

  async #rawNext(): Promise<Buffer | null> {
    if (!this.#iterator || this.#eof) return null
    const r = await this.#iterator.next()
    if (r.done) {
      this.#eof = true
      return null
    }
    return r.value
  }
}

class Shell {
  readonly #input: Input
  #status = 0
  /** Output of the running command goes to /dev/null. */
  #discard = false
  private readonly io: ProcessIO

  constructor(io: ProcessIO) {
    this.io = io
    this.#input = new Input(io)
  }

  async #out(text: string | Buffer, toStderr = false): Promise<void> {
    if (this.#discard) return
    let buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text
    if (this.io.tty) buf = Buffer.from(buf.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
    if (toStderr && !this.io.tty) await this.io.writeStderr(buf)
    else await this.io.writeStdout(buf)
  }

  async runArgv(argv: string[], toStderr = false): Promise<number> {
    const [cmd, ...args] = argv
    if (this.io.signal.aborted) return 130
    switch (cmd) {
      case undefined:
        return 0
      case 'echo': {
        const noNewline = args[0] === '-n'
        const words = noNewline ? args.slice(1) : args
        await this.#out(words.join(' ') + (noNewline ? '' : '\n'), toStderr)
        return 0
      }
      case 'printf':
        // output in parts with pauses between (`printf "card 4111"; sleep 0.4; printf "1111"`)
        await this.#out(printf(args[0] ?? '', args.slice(1)), toStderr)
        return 0
      case 'cat':
        return this.#cat(toStderr)
      case 'env': {
        const lines = Object.keys(this.io.env)
          .sort()
          .map((k) => `${k}=${this.io.env[k]}\n`)
          .join('')
        await this.#out(lines, toStderr)
        return 0
      }
      case 'sleep': {
        const seconds = Number(args[0] ?? '0')
        if (!Number.isFinite(seconds) || seconds < 0) {
          await this.#out(`sleep: invalid time interval '${args[0]}'\n`, true)
          return 1
        }
        await sleep(seconds * 1000, undefined, { signal: this.io.signal }).catch(() => undefined)
        return 0
      }
      case 'exit':
        return Number.parseInt(args[0] ?? String(this.#status), 10) & 0xff
      case 'true':
        return 0
      case 'false':
        return 1
      case 'seq': {
        const n = Number.parseInt(args[0] ?? '0', 10)
        for (let i = 1; i <= n; i++) await this.#out(`${i}\n`, toStderr)
        return 0
      }
      case 'bytes': {
        let remaining = Number.parseInt(args[0] ?? '0', 10)
        const fill = Buffer.alloc(64 * 1024, (args[1] ?? 'x').slice(0, 1) || 'x')
        while (remaining > 0 && !this.io.signal.aborted) {
          const n = Math.min(remaining, fill.length)
          await this.#out(fill.subarray(0, n), toStderr)
          remaining -= n
        }
        return 0
      }
      case 'stty':
        if (args[0] === 'size') {
          const size = this.io.size()
          if (!this.io.tty || !size) {
            await this.#out("stty: 'standard input': Inappropriate ioctl for device\n", true)
            return 1
          }
          await this.#out(`${size.height} ${size.width}\n`, toStderr)
          return 0
        }
        return 0
      case 'tty':
        await this.#out(this.io.tty ? '/dev/pts/0\n' : 'not a tty\n', toStderr)
        return this.io.tty ? 0 : 1
      case 'hostname':
        await this.#out(`${this.io.env['HOSTNAME'] ?? 'localhost'}\n`, toStderr)
        return 0
      case 'sh':
      case 'bash':
      case '/bin/sh':
      case '/bin/bash':
        if (args[0] === '-c') return this.runScript(args[1] ?? '')
        return this.interactive()
      default:
        await this.#out(`sh: 1: ${cmd}: not found\n`, true)
        return 127
    }
  }

  async #cat(toStderr: boolean): Promise<number> {
    if (this.io.tty) {
      for (;;) {
        const line = await this.#input.readLine()
        if (line === null) return 0
        await this.#out(line + '\n', toStderr)
      }
    }
    for (;;) {
      const chunk = await this.#input.nextChunk()
      if (chunk === null) return 0
      if (toStderr) await this.io.writeStderr(chunk)
      else await this.io.writeStdout(chunk)
    }
  }

  async runScript(script: string): Promise<number> {
    for (const statement of splitStatements(script)) {
      // an and-or list: `a && b || c` (k9s opens its shell with one)
      const words = splitWords(statement)
      let status = 0
      let run = true
      let start = 0
      for (let i = 0; i <= words.length; i++) {
        const op = words[i]
        if (i < words.length && op !== '&&' && op !== '||') continue
        if (run) {
          const r = await this.#simple(words.slice(start, i))
          if (r.ends) return r.status
          status = this.#status = r.status
        }
        run = op === '&&' ? status === 0 : status !== 0
        start = i + 1
      }
    }
    return this.#status
  }

  /** One command with its redirects; `ends` when it ends the script (exit, exec). */
  async #simple(argv: string[]): Promise<{ status: number; ends: boolean }> {
    let words = argv
    let toStderr = false
    if (words.at(-1) === '>&2' || words.at(-1) === '1>&2') {
      toStderr = true
      words = words.slice(0, -1)
    }
    const quiet = words.at(-1) === '>/dev/null'
    if (quiet) words = words.slice(0, -1)
    this.#discard = quiet
    try {
      if (words[0] === 'exit') return { status: await this.runArgv(words), ends: true }
      if (words[0] === 'exec') return { status: await this.runArgv(words.slice(1)), ends: true }
      if (words[0] === 'command' && words[1] === '-v') {
        const known = words[2] !== undefined && BUILTINS.includes(words[2])
        if (known) await this.#out(`/bin/${words[2]}\n`, toStderr)
        return { status: known ? 0 : 1, ends: false }
      }
      return { status: await this.runArgv(words, toStderr), ends: false }
    } finally {
      this.#discard = false
    }
  }

  async interactive(): Promise<number> {
    for (;;) {
      if (this.io.tty) await this.#out('# ')
      let line: string | null
      try {
        line = await this.#input.readLine()
      } catch (e) {
        if (e instanceof Interrupted) {
          this.#status = 130
          continue
        }
        throw e
      }
      if (line === null) {
        if (this.io.tty) await this.#out('exit\n')
        return this.#status
      }
      const words = splitWords(line)
      if (words[0] === 'exit') return this.runArgv(words)
      this.#status = await this.runScript(line)
    }
  }
}

/** What `command -v` finds. */
const BUILTINS = [
  'echo',
  'printf',
  'cat',
  'env',
  'sleep',
  'exit',
  'true',
  'false',
  'seq',
  'bytes',
  'stty',
  'tty',
  'hostname',
  'sh',
  'bash',
]

/** printf's FORMAT with the escapes and conversions the tests use. */
export function printf(format: string, args: string[]): string {
  let i = 0
  return format.replace(
    /\\([nt\\])|%([s%])/g,
    (_m, esc: string | undefined, conv: string | undefined) => {
      if (esc) return esc === 'n' ? '\n' : esc === 't' ? '\t' : '\\'
      return conv === '%' ? '%' : (args[i++] ?? '')
    },
  )
}

/** Statements of a script: split on ';' and newlines outside quotes. */
export function splitStatements(script: string): string[] {
  const out: string[] = []
  let cur = ''
  let quote: string | null = null
  for (const ch of script) {
    if (quote) {
      if (ch === quote) quote = null
      cur += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      cur += ch
    } else if (ch === ';' || ch === '\n') {
      if (cur.trim()) out.push(cur.trim())
      cur = ''
    } else cur += ch
  }
  if (cur.trim()) out.push(cur.trim())
  return out
}

/** Words of a statement with single and double quotes removed. */
export function splitWords(statement: string): string[] {
  const out: string[] = []
  let cur: string | null = null
  let quote: string | null = null
  for (const ch of statement) {
    if (quote) {
      if (ch === quote) quote = null
      else cur = (cur ?? '') + ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      cur = cur ?? ''
    } else if (ch === ' ' || ch === '\t') {
      if (cur !== null) out.push(cur)
      cur = null
    } else cur = (cur ?? '') + ch
  }
  if (cur !== null) out.push(cur)
  return out
}

/** Runs argv in the fake container and resolves with its exit code. */
export async function runCommand(argv: string[], io: ProcessIO): Promise<number> {
  try {
    return await new Shell(io).runArgv(argv)
  } catch (e) {
    if (e instanceof Interrupted) return 130
    throw e
  }
}
