// Relays an upgraded session between the client and the API server through a tap. Every chunk
// is shown to the tap first and then forwarded unchanged, with backpressure in both directions
// (a slow reader slows its writer, as with pipe()). A chunk the tap cannot parse is not
// forwarded: the session ends (fail closed; Gatehouse does not relay what it cannot record).
// Client bytes go upstream only once the tap has read them whole: a frame (a WebSocket message)
// still incomplete waits until it ends, so nothing reaches the container that the tap has not
// attributed and recorded, and the bytes the client sent with its upgrade request are read
// first (issue 18). A client's protocol error ends the session with Gatehouse's termination (on
// WebSocket a close frame 1002 after a Status on the error channel), not a bare TCP close.
//
// Gatehouse can speak last: terminate() waits for the current upstream-to-client frame to end,
// sends the dialect's termination (a Status on the error channel, then a close), and closes
// both sides.
//
// With a rewriter (exec and attach output masked for the client, client-masking.ts), upstream
// bytes go to the client through it instead: it sends whole frames only, possibly later (text
// held back, let out when a hold bound runs out), and its held-back text goes out before
// Gatehouse's termination and before the client's side is ended.
import type { Duplex } from 'node:stream'
import type { ClientRewriter } from './client-masking.ts'
import { TapProtocolError, type SessionTap } from './tap.ts'

export interface RelayEnd {
  clientToUpstream: number
  upstreamToClient: number
  /** Who ended it: the client, the upstream (the container or the API server), or Gatehouse. */
  endedBy: 'client' | 'upstream' | 'gatehouse'
  /** A protocol error, when the tap refused bytes. */
  protocolError?: string
}

export interface SessionRelay {
  readonly closed: Promise<RelayEnd>
  /** Ends the session with a message the client prints; idempotent. */
  terminate(message: string, reason: string): void
}

/** How long a terminate waits for the current frame to end before it just closes. */
const BOUNDARY_WAIT_MS = 2000
/** After the upstream closed, how long buffered bytes may take to reach the client. */
const CLIENT_DRAIN_MS = 5000

export function relaySession(opts: {
  client: Duplex
  upstream: Duplex
  /** Bytes the upstream sent right after its 101 head (already part of the session). */
  first: Buffer
  /** Bytes the client sent right after its upgrade request head (read by the tap first). */
  clientFirst?: Buffer
  tap: SessionTap
  /** Called for every chunk either way (idle timers). */
  onActivity?: () => void
  /** The recorder's backpressure: while it lags, neither side is read. */
  recorder?: { readonly backlogged: boolean; writable(): Promise<void> }
  /** Rewrites what the client receives; given the relay's way to the client and its failure. */
  rewriter?: (
    toClient: (bytes: Buffer) => void,
    fail: (e: unknown) => void,
  ) => ClientRewriter | undefined
}): SessionRelay {
  const { client, upstream, tap } = opts
  let c2u = 0
  let u2c = 0
  let endedBy: RelayEnd['endedBy'] | undefined
  let protocolError: string | undefined
  let terminating:
    { message: string; reason: string; silent?: boolean; protocolError?: boolean } | undefined
  let boundaryTimer: NodeJS.Timeout | undefined
  /** Inside a data handler: the tap's state is mid-chunk, so a terminate must wait for its end. */
  let busy = false
  let resolveClosed!: (e: RelayEnd) => void
  const closed = new Promise<RelayEnd>((r) => (resolveClosed = r))

  const fail = (side: 'client' | 'upstream', e: unknown): void => {
    const first = protocolError === undefined
    protocolError ??= `malformed ${side === 'client' ? 'client' : 'upstream'} frame: ${e instanceof Error ? e.message : String(e)}`
    endedBy ??= 'gatehouse'
    // The upstream-to-client direction still reads well: the client is told why, at a boundary.
    if (side === 'client' && first && !terminating) {
      begin(`Gatehouse ended the session: ${protocolError}`, 'protocol error', true)
      return
    }
    client.destroy()
    upstream.destroy()
  }

  /** Bytes for the client, with backpressure on the upstream (not while terminating). */
  const toClient = (bytes: Buffer): void => {
    if (!bytes.length || !client.writable) return
    if (!client.write(bytes) && !terminating) {
      hold('upstream', 'client-buffer')
      client.once('drain', () => release('upstream', 'client-buffer'))
    }
  }
  const rewriter = opts.rewriter?.(toClient, (e) => fail('upstream', e))
  /** Held-back text goes out: before Gatehouse speaks last, before the client's side ends. */
  const endRewriter = (): void => {
    try {
      rewriter?.end()
    } catch (e) {
      fail('upstream', e)
    }
  }

  /** Sends the termination and closes: called at an upstream-to-client frame boundary. */
  const finishTermination = (): void => {
    if (!terminating) return
    clearTimeout(boundaryTimer)
    upstream.removeListener('data', fromUpstream)
    upstream.destroy()
    endRewriter()
    if (client.writable) {
      // built now, at the boundary: what the tap knows (open streams, nested framing) is current
      let bytes: Buffer = Buffer.alloc(0)
      if (!terminating.silent) {
        try {
          bytes = tap.termination(
            terminating.message,
            terminating.reason,
            terminating.protocolError ?? false,
          )
        } catch (e) {
          if (!(e instanceof TapProtocolError)) throw e
        }
      }
      client.write(bytes)
      client.end()
    }
    setTimeout(() => client.destroy(), CLIENT_DRAIN_MS).unref()
  }

  // A side is read only when nothing holds it: the other side's buffer, or the recorder's.
  const holds = { client: new Set<string>(), upstream: new Set<string>() }
  const hold = (side: 'client' | 'upstream', why: string): void => {
    holds[side].add(why)
    ;(side === 'client' ? client : upstream).pause()
  }
  const release = (side: 'client' | 'upstream', why: string): void => {
    holds[side].delete(why)
    if (holds[side].size === 0) (side === 'client' ? client : upstream).resume()
  }
  let waitingForRecorder = false
  const checkRecorder = (): void => {
    const r = opts.recorder
    if (!r || waitingForRecorder || !r.backlogged) return
    waitingForRecorder = true
    hold('client', 'recorder')
    hold('upstream', 'recorder')
    void r.writable().then(() => {
      waitingForRecorder = false
      release('client', 'recorder')
      release('upstream', 'recorder')
    })
  }

  /** Client bytes the tap has seen but not yet as a whole frame: they wait here. */
  const unread = { chunks: [] as Buffer[], bytes: 0 }
  /** The bytes, from the start of `unread`, that make whole frames now. */
  const takeRead = (): Buffer => {
    const n = unread.bytes - tap.clientPendingBytes()
    if (n <= 0) return Buffer.alloc(0)
    const all = unread.chunks.length === 1 ? unread.chunks[0]! : Buffer.concat(unread.chunks)
    const rest = all.subarray(n)
    unread.chunks = rest.length ? [rest] : []
    unread.bytes = rest.length
    return all.subarray(0, n)
  }
  const fromClient = (chunk: Buffer): void => {
    if (terminating) return
    busy = true
    try {
      tap.fromClient(chunk)
    } catch (e) {
      return fail('client', e)
    } finally {
      busy = false
    }
    unread.chunks.push(chunk)
    unread.bytes += chunk.length
    opts.onActivity?.()
    const ready = takeRead()
    if (ready.length === 0) return
    c2u += ready.length
    if (!upstream.write(ready)) {
      hold('client', 'upstream-buffer')
      upstream.once('drain', () => release('client', 'upstream-buffer'))
    }
    checkRecorder()
  }

  function fromUpstream(chunk: Buffer): void {
    let forward = chunk
    let boundary = false
    if (terminating) {
      // only the rest of the frame in flight, then Gatehouse's own frames
      const n = tap.upstreamBytesToBoundary()
      forward = chunk.subarray(0, Math.min(n, chunk.length))
      boundary = n <= chunk.length
    }
    if (forward.length) {
      busy = true
      try {
        tap.fromUpstream(forward)
      } catch (e) {
        return fail('upstream', e)
      } finally {
        busy = false
      }
      u2c += forward.length
      opts.onActivity?.()
      if (rewriter) {
        try {
          rewriter.push(forward)
        } catch (e) {
          return fail('upstream', e)
        }
        const waiting = rewriter.waiting
        if (waiting) {
          hold('upstream', 'rewriter')
          void waiting.then(() => release('upstream', 'rewriter'))
        }
      } else toClient(forward)
      checkRecorder()
    }
    if (boundary) finishTermination()
  }

  client.on('data', fromClient)
  upstream.on('data', fromUpstream)
  // Whoever sends FIN first ends the session: neither WebSocket nor SPDY half-closes TCP, so a
  // FIN is a side going away. (Against kube-apiserver 1.30+, which terminates the WebSocket itself,
  // a client gone mid-frame makes the API server reset the connection at once; that reset must
  // not be taken for the session ending upstream.)
  client.on('end', () => {
    if (terminating) return
    endedBy ??= 'client'
    upstream.end()
  })
  upstream.on('end', () => {
    if (terminating) return
    endedBy ??= 'upstream'
    endRewriter()
    client.end()
  })
  client.on('error', () => {
    endedBy ??= 'client'
    upstream.destroy()
  })
  upstream.on('error', () => {
    endedBy ??= 'upstream'
    client.destroy()
  })

  let open = 2
  const sideClosed = (): void => {
    if (--open > 0) return
    clearTimeout(boundaryTimer)
    endRewriter()
    resolveClosed({
      clientToUpstream: c2u,
      upstreamToClient: u2c,
      endedBy: endedBy ?? 'client',
      ...(protocolError ? { protocolError } : {}),
    })
  }
  client.once('close', () => {
    endedBy ??= 'client'
    upstream.destroy()
    sideClosed()
  })
  upstream.once('close', () => {
    endedBy ??= 'upstream'
    if (!terminating) {
      endRewriter()
      client.end()
      setTimeout(() => client.destroy(), CLIENT_DRAIN_MS).unref()
    }
    sideClosed()
  })

  /** Gatehouse speaks last: stop reading the client, end at the next upstream boundary. */
  function begin(message: string, reason: string, isProtocolError = false): void {
    if (terminating || open < 2) return
    // Called from an observer while the tap reads a chunk (a limit reached mid-chunk): finish
    // relaying that chunk first, then speak at the boundary.
    if (busy) return queueMicrotask(() => begin(message, reason, isProtocolError))
    endedBy ??= 'gatehouse'
    client.removeListener('data', fromClient)
    terminating = { message, reason, protocolError: isProtocolError }
    holds.upstream.clear()
    upstream.resume()
    if (tap.upstreamBytesToBoundary() === 0) return finishTermination()
    boundaryTimer = setTimeout(() => {
      // the frame never ended: close without Gatehouse's message rather than corrupt the stream
      terminating = { message, reason, silent: true }
      finishTermination()
    }, BOUNDARY_WAIT_MS)
  }

  if (opts.first.length) fromUpstream(opts.first)
  if (opts.clientFirst?.length) fromClient(opts.clientFirst)
  upstream.resume()

  return {
    closed,
    terminate: (message, reason) => begin(message, reason),
  }
}
