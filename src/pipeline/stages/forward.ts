// forward: the plain chain's terminal stage. Sends the request to the API server and streams
// the answer back through the request's response filters (src/pipeline/response.ts), which
// the runner made from chain.ts's list: this stage only forwards.
import { GatewayError } from '../../errors/index.ts'
import { isLongRunning } from '../../kube/long-running.ts'
import type { UpstreamCluster } from '../../upstream/cluster.ts'
import { forwardRequest } from '../../upstream/forward.ts'
import { required, type RequestContext } from '../context.ts'
import type { ResponseFilters } from '../response.ts'
import type { Terminal } from '../stage.ts'

/** A body Gatehouse rewrote (a pinned write) has a length of its own: undici sets it. */
function withoutLengthIf(body: Buffer | undefined, headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2)
    if (!body || headers[i]!.toLowerCase() !== 'content-length')
      out.push(headers[i]!, headers[i + 1]!)
  return out
}

export function createForwardStage(opts: { sendTimeoutMs: number }): Terminal {
  return {
    name: 'forward',
    async run(ctx: RequestContext, response: ResponseFilters) {
      const cluster: UpstreamCluster = required(ctx.cluster, 'a cluster')
      const info = required(ctx.requestInfo, 'request attributes')
      const longRunning = isLongRunning(info)
      // a watch asked for by a client that already closed its sending side (half-close): nobody
      // will read it, and it would never end (src/gateway.ts)
      if (longRunning && ctx.req.httpVersionMajor === 1 && ctx.req.socket.readableEnded)
        throw new GatewayError(
          'GW_CLIENT_CLOSED',
          'the client closed its side of the connection before its long-running request was sent',
        )
      const result = await forwardRequest({
        cluster,
        req: ctx.req,
        res: required(ctx.res, 'a response'),
        path: required(ctx.upstreamPath, 'an upstream path'),
        headers: withoutLengthIf(
          ctx.upstreamBody,
          required(ctx.upstreamHeaders, 'upstream headers'),
        ),
        requestId: ctx.id,
        signal: ctx.signal,
        longRunning,
        sendTimeoutMs: opts.sendTimeoutMs,
        body: ctx.upstreamBody ?? ctx.requestBody ?? null,
        response,
      })
      ctx.responseStatus = result.status
      ctx.requestBytes = result.requestBytes
      ctx.responseBytes = result.responseBytes
      ctx.sentBytes = result.sentBytes
      ctx.responseComplete = result.complete
    },
  }
}
