// An approval's request described from its stored fields, for every sink that styles client-
// chosen literals its own way (the web page, Slack): the same words as the summary text.
import { describeParts, type Part } from '../kube/describe.ts'
import type { ApprovalRecord } from './record.ts'

export function summaryParts(a: ApprovalRecord): Part[] {
  const r = a.request
  return describeParts(
    {
      isResourceRequest: r.resource !== '',
      path: r.path ?? r.target.split('?')[0]!,
      verb: r.verb,
      authzVerb: r.authzVerb ?? r.verb,
      apiGroup: r.apiGroup,
      resource: r.resource,
      subresource: r.subresource,
      namespace: r.namespace,
      name: r.name,
    },
    {
      query: new Map(a.bound?.query ?? []),
      method: r.method,
      dryRun: r.dryRun === true || (a.bound?.query ?? []).some(([k]) => k === 'dryRun'),
      ...(r.objectName ? { objectName: r.objectName } : {}),
    },
  )
}
