// Exec, attach and port-forward when sessions are not recorded (`sessions.record: false`): no
// record, no recording, no limits, but the session still runs through the tap, so only frames
// Gatehouse can read are relayed (after a 101 nothing flows that the tap does not understand),
// and what the client receives of exec and attach is still masked for callers whose policy asks
// for it. Recording is a switch; reading the protocol and masking are not.
import type { Duplex } from 'node:stream'
import { GatewayError } from '../errors/index.ts'
import { createClientRewriter } from './client-masking.ts'
import type { TextMasking } from './masked-streams.ts'
import { dialectOf, type SessionKind } from '../kube/remote-command.ts'
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
 * The relayer of an unrecorded session. Throws GW_SESSION_UNSUPPORTED for a dialect the tap
 * cannot read (nothing has reached the client yet: the upgrade is refused).
 */
export function unrecordedRelay(
  kind: SessionKind,
  responseHead: string,
  query: URLSearchParams,
  masking: TextMasking | undefined,
): (
  client: Duplex,
  upstream: Duplex,
  first: Buffer,
  clientFirst: Buffer,
) => Promise<{ clientToUpstream: number; upstreamToClient: number }> {
  const dialect = dialectOf(responseHead)
  if ('unknown' in dialect)
    throw new GatewayError(
      'GW_SESSION_UNSUPPORTED',
      `Gatehouse cannot relay this session: ${dialect.unknown}`,
    )
  return async (client, upstream, first, clientFirst) => {
    const tap = createTap(dialect, kind, NOTHING_KEPT, query)
    const relay = relaySession({
      client,
      upstream,
      first,
      clientFirst,
      tap,
      ...(masking && kind !== 'portforward'
        ? {
            rewriter: (send: (b: Buffer) => void, onError: (e: unknown) => void) =>
              createClientRewriter({
                dialect,
                streamTypes: tap.streamTypes,
                masking,
                send,
                onError,
              }),
          }
        : {}),
    })
    const end = await relay.closed
    tap.close()
    return end
  }
}
