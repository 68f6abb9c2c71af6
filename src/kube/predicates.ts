// What kind of request this is, from its Kubernetes attributes alone.
import type { SessionKind } from './remote-command.ts'
import type { RequestInfo } from './request-info.ts'

/** A core-group resource request (`/api/v1/...`) for `resource`. */
function isCore(info: RequestInfo | undefined, resource: string): info is RequestInfo {
  return !!info?.isResourceRequest && info.apiGroup === '' && info.resource === resource
}

/** A request for Secrets (the object, a list, a watch, any subresource). */
export function isSecretRequest(info: RequestInfo | undefined): boolean {
  return isCore(info, 'secrets')
}

/** A read of a pod's log (`kubectl logs`, with or without -f). */
export function isPodLog(info: RequestInfo | undefined): boolean {
  return isCore(info, 'pods') && info.verb === 'get' && info.subresource === 'log'
}

/** The session an upgrade of this request is: exec, attach or port-forward; else undefined. */
export function sessionKindOf(info: RequestInfo | undefined): SessionKind | undefined {
  if (!isCore(info, 'pods')) return undefined
  const sub = info.subresource
  return sub === 'exec' || sub === 'attach' || sub === 'portforward' ? sub : undefined
}
