// Every way Gatehouse refuses or fails a request, with the HTTP status and Kubernetes reason it
// answers with. docs/errors.md documents each code; a test fails when the two drift apart.
export const errorCodes = {
  GW_REQUEST_INVALID: { status: 400, reason: 'BadRequest' },
  GW_REQUEST_UNCLASSIFIABLE: { status: 400, reason: 'BadRequest' },
  // A body one decoder could read differently from another (duplicate keys, YAML aliases...).
  GW_REQUEST_BODY_AMBIGUOUS: { status: 400, reason: 'BadRequest' },
  GW_UPGRADE_UNSUPPORTED: { status: 400, reason: 'BadRequest' },
  GW_REQUEST_HEADERS_TOO_LARGE: { status: 431, reason: 'RequestHeaderFieldsTooLarge' },
  GW_REQUEST_BODY_TOO_LARGE: { status: 413, reason: 'RequestEntityTooLarge' },
  GW_REQUEST_TIMEOUT: { status: 408, reason: 'Timeout' },
  GW_REQUEST_EXPECTATION: { status: 417, reason: 'ExpectationFailed' },
  GW_REQUEST_METHOD: { status: 405, reason: 'MethodNotAllowed' },
  // One identity (or the whole process) is at its bound of concurrent requests or streams.
  GW_CONCURRENCY_LIMIT: { status: 429, reason: 'TooManyRequests', retryAfterSeconds: 1 },
  // Not an answer: the client went away before the response was complete. Recorded only.
  GW_CLIENT_CLOSED: { status: 499, reason: 'ClientClosedRequest' },
  GW_ROUTE_UNKNOWN_CLUSTER: { status: 404, reason: 'NotFound' },
  GW_AUTHN_MISSING_CREDENTIALS: { status: 401, reason: 'Unauthorized' },
  GW_AUTHN_INVALID_TOKEN: { status: 401, reason: 'Unauthorized' },
  GW_AUTHN_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable' },
  GW_AUTHZ_IMPERSONATION_REFUSED: { status: 403, reason: 'Forbidden' },
  GW_POLICY_DENIED: { status: 403, reason: 'Forbidden' },
  // Approvals: the request waits for people; each way it ends without passing is a 403 naming
  // the approval, so kubectl prints the id, the approvers' comment or the expiry.
  GW_APPROVAL_PENDING: { status: 403, reason: 'Forbidden' },
  GW_APPROVAL_DENIED: { status: 403, reason: 'Forbidden' },
  GW_APPROVAL_EXPIRED: { status: 403, reason: 'Forbidden' },
  // An approval is only created when approvers can be shown the whole request, and one identity
  // may only have so many pending at once (Retry-After: when one of them may have ended).
  GW_APPROVAL_UNSHOWABLE: { status: 415, reason: 'UnsupportedMediaType' },
  GW_APPROVAL_TOO_LARGE: { status: 413, reason: 'RequestEntityTooLarge' },
  GW_APPROVAL_LIMIT: { status: 429, reason: 'TooManyRequests' },
  // Retry-After lets client-go (kubectl, helm, controllers) retry by itself through a short
  // audit-store outage instead of failing the command.
  GW_AUDIT_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable', retryAfterSeconds: 1 },
  // A forwarded request's record must be on disk before the request goes upstream: when the
  // journal cannot write (disk full or failing), the request is refused and may be retried.
  GW_AUDIT_JOURNAL_UNAVAILABLE: {
    status: 503,
    reason: 'ServiceUnavailable',
    retryAfterSeconds: 1,
  },
  // The request's audit record could not be built (it is refused before forwarding, never
  // forwarded without a record).
  GW_AUDIT_RECORD_FAILED: { status: 500, reason: 'InternalError' },
  // One source sent more refused requests than audit.refusals.limitPerSource in a window.
  GW_REFUSALS_RATE_LIMITED: { status: 429, reason: 'TooManyRequests' },
  GW_SESSION_UNSUPPORTED: { status: 502, reason: 'BadGateway' },
  // Sessions last; a retry soon after another one closes may succeed.
  GW_SESSION_LIMIT: { status: 429, reason: 'TooManyRequests', retryAfterSeconds: 10 },
  GW_UPSTREAM_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable' },
  GW_UPSTREAM_BAD_GATEWAY: { status: 502, reason: 'BadGateway' },
  // Masking applies and the response cannot be decoded (an encoding or content type Gatehouse
  // cannot read, malformed JSON, an object over masking.maxObjectBytes): refused, never passed.
  GW_RESPONSE_UNMASKABLE: { status: 502, reason: 'BadGateway' },
  GW_UPSTREAM_TIMEOUT: { status: 504, reason: 'Timeout' },
  GW_UPSTREAM_CREDENTIAL: { status: 503, reason: 'ServiceUnavailable' },
  GW_SHUTTING_DOWN: { status: 503, reason: 'ServiceUnavailable' },
  GW_INTERNAL: { status: 500, reason: 'InternalError' },
} as const

export type GatewayErrorCode = keyof typeof errorCodes
