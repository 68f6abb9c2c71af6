#!/usr/bin/env node
// The gatehouse command line: every command in one table (command.ts parses and answers --help
// for each), errors as one line naming the command, and a quiet exit when the reader of stdout
// goes away (`gatehouse audit list | head`): status 141, like a Unix tool killed by SIGPIPE.
import { ConfigError } from '../config/index.ts'
import { PolicyCompileError, PolicyLoadError } from '../policy/index.ts'
import { CliError, errorText, runCommand } from './command.ts'
import { COMMANDS } from './commands.ts'

/** 128 + SIGPIPE (13): what a shell reports for a writer whose reader closed the pipe. */
const CLOSED_PIPE_EXIT = 141

function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(CLOSED_PIPE_EXIT)
    throw e
  })
}

function exitWith(e: unknown): never {
  const known =
    e instanceof CliError ||
    e instanceof ConfigError ||
    e instanceof PolicyLoadError ||
    e instanceof PolicyCompileError
  const message = (e as Error).message ?? String(e)
  const text = known || message.startsWith('gatehouse') ? message : `gatehouse: ${message}`
  process.stderr.write(`${errorText(text)}\n`)
  process.exit(e instanceof CliError ? e.exitCode : 1)
}

quietOnClosedPipe(process.stdout)
quietOnClosedPipe(process.stderr)
runCommand(COMMANDS, process.argv.slice(2), (text) => process.stdout.write(text)).catch(exitWith)
