// The one error type stages throw: a public message for the caller, an internal detail for logs.
import { errorCodes, type GatewayErrorCode } from './codes.ts'

export class GatewayError extends Error {
  readonly code: GatewayErrorCode
  readonly status: number
  readonly reason: string
  /** For logs and audit only: never shown to the caller (may name rules, upstream errors). */
  readonly detail: string | undefined
  /** Sent as Retry-After and Status details.retryAfterSeconds when retrying soon may succeed. */
  readonly retryAfterSeconds: number | undefined

  constructor(
    code: GatewayErrorCode,
    message: string,
    opts: { detail?: string; cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'GatewayError'
    this.code = code
    this.status = errorCodes[code].status
    this.reason = errorCodes[code].reason
    this.detail = opts.detail
    const entry = errorCodes[code]
    this.retryAfterSeconds =
      opts.retryAfterSeconds ?? ('retryAfterSeconds' in entry ? entry.retryAfterSeconds : undefined)
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError
}
