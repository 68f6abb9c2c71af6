// route: which cluster a request is for. `/clusters/<name>/...` selects a cluster by name; any
// other path goes to the default cluster, if one is configured.
//   /clusters/dev/api/v1/pods   → cluster dev, upstream path /api/v1/pods
//   /api/v1/pods                → the default cluster, unchanged
import { GatewayError } from '../../errors/index.ts'
import type { UpstreamCluster } from '../../upstream/cluster.ts'
import type { RequestContext } from '../context.ts'
import type { Stage } from '../stage.ts'

export const CLUSTER_PREFIX = '/clusters/'

export function createRouteStage(clusters: ReadonlyMap<string, UpstreamCluster>): Stage {
  const fallback = [...clusters.values()].find((c) => c.config.default)
  return {
    name: 'route',
    run(ctx: RequestContext) {
      const url = ctx.req.url ?? ''
      if (!url.startsWith('/')) {
        throw new GatewayError(
          'GW_REQUEST_INVALID',
          'the request target must be an absolute path (origin-form)',
        )
      }
      if (url.startsWith(CLUSTER_PREFIX)) {
        const rest = url.slice(CLUSTER_PREFIX.length)
        const end = rest.search(/[/?]/)
        const name = end < 0 ? rest : rest.slice(0, end)
        const cluster = clusters.get(name)
        if (!cluster) {
          throw new GatewayError(
            'GW_ROUTE_UNKNOWN_CLUSTER',
            `Gatehouse has no cluster named '${name.slice(0, 64)}'; known clusters: ${[...clusters.keys()].join(', ')}`,
          )
        }
        const path = end < 0 ? '/' : rest.slice(end)
        ctx.cluster = cluster
        ctx.upstreamPath = path.startsWith('/') ? path : `/${path}`
        return
      }
      if (!fallback) {
        throw new GatewayError(
          'GW_ROUTE_UNKNOWN_CLUSTER',
          `no default cluster: use https://<gatehouse>/clusters/<name>/ as the server (known clusters: ${[...clusters.keys()].join(', ')})`,
        )
      }
      ctx.cluster = fallback
      ctx.upstreamPath = url
    },
  }
}
