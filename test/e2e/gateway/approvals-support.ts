// Shared setup of the approvals e2e tests: a policy with hold, retry and fast-expiring approve
// rules, human identities (static tokens: approvers, a requester, a break-glass member) beside
// the CI identity, Gatehouse with an admin listener, and small admin-API helpers.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import type { ApprovalRecord } from '../../../src/approval/record.ts'
import { adminClient } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { authenticationConfig, type GatewayEnv } from './env.ts'

/** Static tokens of human identities: name → token. */
export const HUMANS = {
  alice: 'alice-approver-token-0001',
  carol: 'carol-approver-token-0002',
  bob: 'bob-requester-token-00003',
  breaker: 'breaker-on-call-token-004',
  dave: 'dave-developer-token-0005',
  erin: 'erin-db-approver-token-06',
} as const
export type Human = keyof typeof HUMANS
const GROUPS: Record<Human, string> = {
  alice: 'approvers',
  carol: 'approvers',
  bob: 'approvers|developers',
  breaker: 'on-call',
  dave: 'developers',
  erin: 'db-approvers',
}
export const humanName = (h: Human): string => `human:${h}`

export const APPROVAL_POLICY = `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-approvals
spec:
  subjects:
    - name: '*'
  rules:
    - name: cluster-admin-bindings
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [clusterrolebindings]
      approval:
        approvers: [{ group: approvers }]
        expiresIn: 10m
        wait: hold
    - name: fast-expiry
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [clusterroles]
      approval:
        approvers: [{ group: approvers }]
        expiresIn: 3s
    - name: two-approvers
      action: approve
      verbs: [create]
      apiGroups: [rbac.authorization.k8s.io]
      resources: [roles]
      approval:
        approvers: [{ group: approvers }]
        quorum: 2
        wait: retry
    - name: config-changes
      action: approve
      verbs: [create]
      resources: [configmaps]
      namespaces: ['gw-appr-*']
      approval:
        approvers: [{ group: approvers }]
        wait: retry
    - name: everything-else
      action: allow
      verbs: ['*']
`

export function approvalFiles(
  dir: string,
  policy = APPROVAL_POLICY,
): { policies: string; tokens: string } {
  const policies = join(
    dir,
    `approval-policies-${createHash('sha256').update(policy).digest('hex').slice(0, 8)}`,
  )
  mkdirSync(policies, { recursive: true })
  writeFileSync(join(policies, 'approvals.yaml'), policy)
  const tokens = join(dir, 'human-tokens.csv')
  writeFileSync(
    tokens,
    Object.entries(HUMANS)
      .map(([h, t]) => `${t},${humanName(h as Human)},${GROUPS[h as Human]}`)
      .join('\n') + '\n',
  )
  return { policies, tokens }
}

/** The cluster lets the human requester do anything (Gatehouse's policy decides). */
export async function grantHumans(e: GatewayEnv): Promise<void> {
  await adminClient(e.cluster).ensure('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'gatehouse-e2e:human-bob' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: humanName('bob') }],
  })
}

export async function startApprovalGatehouse(
  e: GatewayEnv,
  opts: {
    store?: unknown
    approvals?: Record<string, unknown>
    policy?: string
    extraAuthenticators?: unknown[]
  } = {},
): Promise<RunningGatehouse> {
  const files = approvalFiles(e.dir, opts.policy)
  const auth = authenticationConfig(e.cluster, e.issuer) as { authenticators: unknown[] }
  return startGatehouse(e.cluster, {
    authentication: {
      authenticators: [
        ...auth.authenticators,
        ...(opts.extraAuthenticators ?? []),
        { staticTokens: { file: files.tokens, insecureAllowStaticTokens: true } },
      ],
    },
    upstreamTokenFile: e.upstreamTokenFile,
    policies: [files.policies],
    overrides: {
      admin: { listen: { address: '127.0.0.1', port: 0 }, subjects: [{ name: 'human:alice' }] },
      // the human approvers of these tests hold static tokens (development only)
      approvals: {
        pollIntervalMs: 500,
        approverLogin: { insecureStaticTokens: true },
        ...opts.approvals,
      },
      ...(opts.store ? { audit: { store: opts.store } } : {}),
    },
  })
}

export async function adminApi(
  g: RunningGatehouse,
  method: 'GET' | 'POST',
  path: string,
  token: string,
  body?: unknown,
): Promise<{ code: number; body: Record<string, unknown> }> {
  const agent = new Agent({ connect: { ca: readFileSync(g.caFile) } })
  try {
    const res = await request(`${g.server.admin!.url}${path}`, {
      method,
      dispatcher: agent,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    return { code: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  } finally {
    await agent.close()
  }
}

/** Polls the admin API (as alice) until a pending approval matching `match` shows up. */
export async function waitForPending(
  g: RunningGatehouse,
  match: (a: ApprovalRecord) => boolean,
  timeoutMs = 20_000,
): Promise<ApprovalRecord> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await adminApi(g, 'GET', '/api/v1/approvals?state=pending', HUMANS.alice)
    assert.equal(r.code, 200, JSON.stringify(r.body))
    const found = (r.body['items'] as ApprovalRecord[]).find(match)
    if (found) return found
    if (Date.now() > deadline) throw new Error('no matching pending approval showed up')
    await sleep(100)
  }
}

/** Matches the approval of the object `name` (named in its path, or in its body). */
export const named =
  (name: string) =>
  (a: ApprovalRecord): boolean =>
    a.request.name === name || a.request.objectName === name

/** The approval id a retry-mode refusal names. */
export function approvalIdIn(stderr: string): string {
  const m = /approval ([0-9a-f-]{36}) is pending/.exec(stderr)
  assert.ok(m, `no pending approval id in: ${stderr}`)
  return m[1]!
}
