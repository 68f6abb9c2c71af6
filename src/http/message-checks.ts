// What RFC 9112 requires of an HTTP/1.x request message that Node's parser lets through:
// llhttp accepts the versions 0.9 and 2.0 on an HTTP/1 connection, a Transfer-Encoding in an
// HTTP/1.0 message, and (behind the HTTP/2 server's HTTP/1 fallback) any number of Host fields.
// A message another parser would frame or route differently is refused with a Status, never
// guessed at.

/** The parts of a request these checks read. */
export interface Http1Message {
  httpVersion: string
  /** Name/value pairs as received. */
  rawHeaders: readonly string[]
}

/** Why the message is refused (a 400 and the connection closed), or undefined. */
export function http1MessageProblem(m: Http1Message): string | undefined {
  if (m.httpVersion !== '1.1' && m.httpVersion !== '1.0')
    return `HTTP/${m.httpVersion.slice(0, 8)} is not spoken on an HTTP/1.1 connection (RFC 9112 2.3)`
  let hosts = 0
  let transferEncoding = false
  for (let i = 0; i < m.rawHeaders.length; i += 2) {
    const name = m.rawHeaders[i]!.toLowerCase()
    if (name === 'host') hosts++
    else if (name === 'transfer-encoding') transferEncoding = true
  }
  // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, and to any
  // request with more than one Host field line.
  if (hosts > 1) return `the request has ${hosts} Host fields (RFC 9112 3.2)`
  if (hosts === 0 && m.httpVersion === '1.1')
    return 'an HTTP/1.1 request must have a Host field (RFC 9112 3.2)'
  // RFC 9112 6.1: a Transfer-Encoding in an HTTP/1.0 message means its framing is faulty.
  if (transferEncoding && m.httpVersion === '1.0')
    return 'HTTP/1.0 has no Transfer-Encoding; the framing of this message is faulty (RFC 9112 6.1)'
  return undefined
}
