// TokenReview against a cluster, as Gatehouse itself (deploy/rbac/token-review.yaml grants it).
import { request } from 'undici'
import type { TokenReviewer, TokenReviewResult } from '../authn/index.ts'
import type { UpstreamCluster } from './cluster.ts'

const REVIEW_TIMEOUT_MS = 10_000

export function clusterTokenReviewer(
  clusters: ReadonlyMap<string, UpstreamCluster>,
): TokenReviewer {
  return async (clusterName, token, audiences) => {
    const cluster = clusters.get(clusterName)
    if (!cluster) throw new Error(`no cluster named ${clusterName}`)
    const own = cluster.ownAuthorization()
    const res = await request(
      new URL('/apis/authentication.k8s.io/v1/tokenreviews', cluster.server),
      {
        method: 'POST',
        dispatcher: cluster.agent,
        headersTimeout: REVIEW_TIMEOUT_MS,
        bodyTimeout: REVIEW_TIMEOUT_MS,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(own ? { authorization: own } : {}),
        },
        body: JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(audiences.length ? { audiences } : {}) },
        }),
      },
    )
    const text = await res.body.text()
    if (res.statusCode !== 201 && res.statusCode !== 200)
      throw new Error(`TokenReview answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
    const body = JSON.parse(text) as { status?: TokenReviewResult }
    return body.status ?? { authenticated: false }
  }
}
