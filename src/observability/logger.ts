// Structured JSON logs (pino). Credentials never reach a log line: headers are not logged,
// and known secret-bearing keys are redacted as a second line of defence.
import { pino, type Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'gatehouse' },
      redact: {
        paths: [
          'token',
          '*.token',
          'authorization',
          '*.authorization',
          'headers',
          '*.headers',
          'password',
          '*.password',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? process.stderr,
  )
}

/** A logger that drops everything (tests that do not assert on logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
