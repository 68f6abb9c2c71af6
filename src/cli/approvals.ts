// `gatehouse approvals list|show|approve|deny`: approvals from the store named by gatehouse.yaml;
// decisions go through the admin API, as the approver's own identity (a bearer token), so the
// same checks apply as on the web page (separation of duties, approver subjects, quorum).
import { withStore } from './audit.ts'
import { adminRequest } from './admin-request.ts'
import { formatColumns } from './table.ts'
import { queryFromParams } from '../admin/http.ts'
import type { GatewayConfig } from '../config/index.ts'
import {
  APPROVAL_STATES,
  approvalQuerySchema,
  type ApprovalQuery,
  type ApprovalRecord,
} from '../approval/record.ts'
import { fail, type Command } from './command.ts'
import {
  adminUrlOf,
  CONFIG_OPTION,
  configOf,
  LIST_OPTIONS,
  listFilters,
  printJson,
  printList,
  TOKEN_OPTIONS,
  tokenFrom,
} from './common.ts'
import { forTerminal } from './terminal.ts'

export function listApprovals(config: GatewayConfig, q: ApprovalQuery): Promise<ApprovalRecord[]> {
  return withStore(config, (s) => s.approvals.queryApprovals(q))
}

export function getApproval(
  config: GatewayConfig,
  id: string,
): Promise<ApprovalRecord | undefined> {
  return withStore(config, (s) => s.approvals.getApproval(id))
}

/** The request's summary goes last and whole: long names widen no other column, and nothing is cut. */
export function formatApprovals(items: readonly ApprovalRecord[]): string {
  const rows = items.map((a) => [
    a.createdAt,
    a.id,
    a.requester.name,
    `${a.rule.policy}/${a.rule.rule}`,
    a.settings.wait,
    `${a.decisions.filter((d) => d.decision === 'approve').length}/${a.settings.quorum}`,
    a.state + (a.breakGlass ? ' (break-glass)' : ''),
    a.expiresAt,
    a.request.summary,
  ])
  return formatColumns(
    ['CREATED', 'ID', 'REQUESTER', 'RULE', 'WAIT', 'APPROVALS', 'STATE', 'EXPIRES', 'REQUEST'],
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

const APPROVAL_FILTERS = ['identity', 'cluster', 'namespace', 'state'] as const

function decideCommand(decision: 'approve' | 'deny'): Command {
  return {
    name: `approvals ${decision}`,
    summary: `${decision} a pending request through the admin API, as the token's identity`,
    options: {
      ...CONFIG_OPTION,
      comment: {
        type: 'string',
        value: 'TEXT',
        help: decision === 'deny' ? 'why (required; the requester sees it)' : 'a comment',
      },
      ...TOKEN_OPTIONS,
    },
    positionals: { name: 'ID', min: 1, max: 1 },
    examples: [
      decision === 'approve'
        ? 'gatehouse approvals approve -c gatehouse.yaml 9d2f7a3e-4b1c-4e6d-8a5f-3c2b1d0e9f8a --comment checked --token-file me.token'
        : "gatehouse approvals deny -c gatehouse.yaml 9d2f7a3e-4b1c-4e6d-8a5f-3c2b1d0e9f8a --comment 'not during the freeze' --token-env TOKEN",
    ],
    async run(values, [id]) {
      const command = `gatehouse approvals ${decision}`
      const comment = typeof values['comment'] === 'string' ? values['comment'] : ''
      const token = tokenFrom(command, values)
      const r = await decideApproval(
        configOf(values),
        id!,
        decision,
        comment,
        token,
        adminUrlOf(values),
      )
      if (r.code !== 200) fail(`${command}: ${r.code}: ${r.body.trim()}`)
      const a = JSON.parse(r.body) as { state: string }
      process.stdout.write(
        forTerminal(
          `approval ${id}: ${decision === 'approve' ? 'approved' : 'denied'} (now ${a.state})`,
        ) + '\n',
      )
    },
  }
}

export const approvalCommands: Command[] = [
  {
    name: 'approvals list',
    summary: 'list approvals, newest first',
    options: {
      ...LIST_OPTIONS,
      state: { type: 'string', value: APPROVAL_STATES.join('|'), help: 'the approval state' },
    },
    examples: [
      'gatehouse approvals list -c gatehouse.yaml --state pending',
      "gatehouse approvals list -c gatehouse.yaml --identity 'github:octo-org/*' --since 7d -o jsonl",
    ],
    async run(values) {
      const q = listFilters('gatehouse approvals list', values, APPROVAL_FILTERS, (p) =>
        queryFromParams(p, APPROVAL_FILTERS, approvalQuerySchema),
      )
      printList(values, await listApprovals(configOf(values), q), formatApprovals)
    },
  },
  {
    name: 'approvals show',
    summary: 'print one approval as JSON: highlights first, then the binding, body and dry run',
    options: { ...CONFIG_OPTION },
    positionals: { name: 'ID', min: 1, max: 1 },
    examples: ['gatehouse approvals show -c gatehouse.yaml 9d2f7a3e-4b1c-4e6d-8a5f-3c2b1d0e9f8a'],
    async run(values, [id]) {
      const a = await getApproval(configOf(values), id!)
      if (!a) fail(`gatehouse approvals show: no approval ${id}`)
      printJson(a)
    },
  },
  decideCommand('approve'),
  decideCommand('deny'),
]
