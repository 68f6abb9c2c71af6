// `gatehouse approvals list|show|approve|deny`: approvals from the store named by gatehouse.yaml;
// decisions go through the admin API, as the approver's own identity (a bearer token), so the
// same checks apply as on the web page (separation of duties, approver subjects, quorum).
import { withStore } from './audit.ts'
import { adminRequest } from './admin-request.ts'
import { formatColumns } from './table.ts'
import type { GatewayConfig } from '../config/index.ts'
import type { ApprovalQuery, ApprovalRecord } from '../approval/record.ts'

export function listApprovals(config: GatewayConfig, q: ApprovalQuery): Promise<ApprovalRecord[]> {
  return withStore(config, (s) => s.queryApprovals(q))
}

export function getApproval(
  config: GatewayConfig,
  id: string,
): Promise<ApprovalRecord | undefined> {
  return withStore(config, (s) => s.getApproval(id))
}

export function formatApprovals(items: readonly ApprovalRecord[]): string {
  const rows = items.map((a) => [
    a.createdAt,
    a.requester.name,
    a.request.summary.slice(0, 60),
    `${a.rule.policy}/${a.rule.rule}`,
    a.settings.wait,
    `${a.decisions.filter((d) => d.decision === 'approve').length}/${a.settings.quorum}`,
    a.state + (a.breakGlass ? ' (break-glass)' : ''),
    a.expiresAt,
    a.id,
  ])
  return formatColumns(
    ['CREATED', 'REQUESTER', 'REQUEST', 'RULE', 'WAIT', 'APPROVALS', 'STATE', 'EXPIRES', 'ID'],
    rows,
  )
}

/** POST /api/v1/approvals/<id>/(approve|deny) with the comment, as the token's identity. */
export function decideApproval(
  config: GatewayConfig,
  id: string,
  decision: 'approve' | 'deny',
  comment: string,
  token: string,
  opts: { url?: string } = {},
): Promise<{ code: number; body: string }> {
  return adminRequest(
    config,
    'POST',
    `/api/v1/approvals/${encodeURIComponent(id)}/${decision}`,
    token,
    { ...opts, body: { comment } },
  )
}
