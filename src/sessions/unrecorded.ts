// Exec and attach when sessions are not recorded (`sessions.record: false`): no record, no
// recording, no limits, but what the client receives is still masked for callers whose policy
// asks for it. The same tap and rewriter as a recorded session, with an observer that keeps
// nothing: recording is a switch, masking is policy.
import type { Duplex } from 'node:stream'
import { createClientRewriter } from './client-masking.ts'
import type { TextMasking } from './masked-streams.ts'
import { dialectOf, type SessionKind } from './remote-command.ts'
import { relaySession } from './relay.ts'
import { createTap, type SessionObserver } from './tap.ts'

const ignore = (): void => undefined
const NOTHING_KEPT: SessionObserver = {
  stdin: ignore,
  stdout: ignore,
  stderr: ignore,
  resize: ignore,
  stdinClosed: ignore,
  exit: ignore,
  portOpened: ignore,
  portData: ignore,
  portError: ignore,
  portClosed: ignore,
}

/**
 * A relayer that masks exec or attach output for the client; undefined when there is nothing to
 * mask (port-forward, or a dialect Gatehouse does not speak: the tunnel then splices it).
 */
export function unrecordedMaskingRelay(
  kind: SessionKind,
  responseHead: string,
  masking: TextMasking,
):
  | ((
      client: Duplex,
      upstream: Duplex,
      first: Buffer,
    ) => Promise<{ clientToUpstream: number; upstreamToClient: number }>)
  | undefined {
  if (kind === 'portforward') return undefined
  const dialect = dialectOf(responseHead)
  if ('unknown' in dialect) return undefined
  return async (client, upstream, first) => {
    const tap = createTap(dialect, kind, NOTHING_KEPT)
    const relay = relaySession({
      client,
      upstream,
      first,
      tap,
      rewriter: (send, onError) =>
        createClientRewriter({
          dialect,
          streamTypes: tap.streamTypes,
          masking,
          send,
          onError,
        }),
    })
    const end = await relay.closed
    tap.close()
    return end
  }
}
