// Which requests live for as long as the client keeps them: kube-apiserver's own
// BasicLongRunningRequestCheck (k8s.io/apiserver/pkg/server/filters/longrunning.go), as
// configured in cmd/kube-apiserver: the verbs watch and proxy, and the subresources attach,
// exec, log, portforward and proxy. The API server exempts these from its in-flight limits;
// Gatehouse counts them apart from short requests for the same reason.
import type { RequestInfo } from './request-info.ts'

const LONG_RUNNING_VERBS = new Set(['watch', 'proxy'])
const LONG_RUNNING_SUBRESOURCES = new Set(['attach', 'exec', 'log', 'portforward', 'proxy'])

export function isLongRunning(info: RequestInfo): boolean {
  if (!info.isResourceRequest) return false
  return LONG_RUNNING_VERBS.has(info.verb) || LONG_RUNNING_SUBRESOURCES.has(info.subresource)
}
