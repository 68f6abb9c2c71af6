// CI tokens shaped exactly like GitHub's and GitLab's (test/harness/oidc-issuer.ts, checked by
// test/unit/harness/oidc-issuer-shapes.test.ts), from issuers whose discovery documents are the
// real ones' (GitHub's has no authorization endpoints and serves its keys at /.well-known/jwks,
// GitLab's at /oauth/discovery/keys): Gatehouse turns each into the identity its preset names
// (docs/authentication.md, Presets), and the cluster authorizes and audits that identity.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { adminClient, kubectl, waitForAuditEvent } from '../../harness/index.ts'
import { startGatehouse, type RunningGatehouse } from '../../harness/gatehouse.ts'
import { startOidcIssuer, type OidcIssuer } from '../../harness/oidc-issuer.ts'
import { AUDIENCE, GATEHOUSE_ACCOUNT, useGatewayEnv } from './env.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)
const PROJECT = 'platform-team/deployer'

describe('CI issuers shaped like GitHub and GitLab', () => {
  let github: OidcIssuer
  let gitlab: OidcIssuer
  let g: RunningGatehouse

  before(async () => {
    const e = env()
    // what the GitLab project may do is the cluster's decision: read ConfigMaps in default, by
    // its group (a Role of its own: the aggregated 'view' is empty without a controller manager)
    const admin = adminClient(e.cluster)
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'gatehouse-e2e:read-configmaps' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
    })
    await admin.ensure('/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'gatehouse-e2e:gitlab-deployer' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'gatehouse-e2e:read-configmaps',
      },
      subjects: [
        {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Group',
          name: `gitlab-project:${PROJECT}`,
        },
      ],
    })
    // RBAC applies a new binding once its informer has it: wait until the server says so
    for (let i = 0; ; i++) {
      const review = await admin.json<{ status: { allowed?: boolean } }>(
        'POST',
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `gitlab:${PROJECT}`,
            groups: [`gitlab-project:${PROJECT}`],
            resourceAttributes: { namespace: 'default', verb: 'get', resource: 'configmaps' },
          },
        },
      )
      if (review.status.allowed) break
      assert.ok(i < 50, 'the RoleBinding never took effect')
      await new Promise((r) => setTimeout(r, 100))
    }
    await admin.close()
    for (const d of ['github', 'gitlab']) mkdirSync(join(e.dir, `ci-${d}`), { recursive: true })
    github = await startOidcIssuer({
      dir: join(e.dir, 'ci-github'),
      audience: AUDIENCE,
      shape: 'github-actions',
    })
    gitlab = await startOidcIssuer({
      dir: join(e.dir, 'ci-gitlab'),
      audience: AUDIENCE,
      shape: 'gitlab-ci',
    })
    const oidc = (issuer: OidcIssuer, name: string, preset: string): unknown => ({
      oidc: { name, issuer: issuer.url, caFile: issuer.caFile, audiences: [AUDIENCE], preset },
    })
    g = await startGatehouse(e.cluster, {
      authentication: {
        authenticators: [
          oidc(github, 'github', 'github-actions'),
          oidc(gitlab, 'gitlab', 'gitlab-ci'),
        ],
      },
      upstreamTokenFile: e.upstreamTokenFile,
    })
  })
  after(async () => {
    await g?.stop()
    await github?.close()
    await gitlab?.close()
  })

  const getThrough = async (token: string, marker: string) => {
    const r = await kubectl(
      '1.32',
      ['get', 'configmap', marker, '-n', 'default', '--ignore-not-found'],
      { kubeconfig: g.kubeconfig({ token }) },
    )
    return r
  }
  const auditOf = (marker: string) =>
    waitForAuditEvent(
      env().cluster.auditLogPath,
      (ev) => ev.requestURI.includes(marker) && ev.stage === 'ResponseComplete',
    )

  test('a GitLab CI ID token becomes gitlab:<project_path> with its groups and provenance', async () => {
    const marker = `ci-gitlab-${RUN}`
    const token = await gitlab.mintGitLabCi({ project_path: PROJECT, environment: 'production' })
    const r = await getThrough(token, marker)
    assert.equal(r.code, 0, r.stderr)
    const event = await auditOf(marker)
    assert.equal(event.user.username, GATEHOUSE_ACCOUNT)
    // authorized by the project group's RoleBinding (404: there is no such ConfigMap), not 403
    assert.equal(event.responseStatus?.code, 404)
    const who = event.impersonatedUser
    assert.equal(who?.username, `gitlab:${PROJECT}`)
    assert.deepEqual([...(who?.groups ?? [])].filter((x) => x.startsWith('gitlab')).sort(), [
      `gitlab-env:${PROJECT}:production`,
      'gitlab-namespace:platform-team',
      `gitlab-project:${PROJECT}`,
    ])
    const extra = who?.extra ?? {}
    const provenance = Object.fromEntries(
      Object.entries(extra)
        .filter(([k]) => k.startsWith('gatehouse.dev/') && k !== 'gatehouse.dev/request-id')
        .map(([k, v]) => [k.slice('gatehouse.dev/'.length), v]),
    )
    assert.deepEqual(provenance, {
      'auth-method': ['oidc'],
      issuer: [gitlab.url],
      subject: [`project_path:${PROJECT}:ref_type:branch:ref:main`],
      'project-path': [PROJECT],
      'project-id': ['20'],
      'namespace-path': ['platform-team'],
      ref: ['main'],
      'ref-type': ['branch'],
      'ref-protected': ['true'],
      'pipeline-id': ['574'],
      'job-id': ['302'],
      'user-login': ['sample-user'],
      environment: ['production'],
    })
  })

  test('a GitLab token for another audience (a Vault, say) is refused', async () => {
    const token = await gitlab.mintGitLabCi({
      project_path: PROJECT,
      aud: 'https://vault.example.com',
    })
    const r = await getThrough(token, `ci-gitlab-aud-${RUN}`)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Unauthorized|provide credentials/i)
  })

  test('a GitHub Actions token from an issuer with GitHub’s discovery document and x5t headers', async () => {
    const marker = `ci-github-${RUN}`
    const token = await github.mintGitHubActions({
      repository: 'octo-org/app',
      environment: 'prod',
    })
    const r = await getThrough(token, marker)
    assert.equal(r.code, 0, r.stderr)
    const who = (await auditOf(marker)).impersonatedUser
    assert.equal(who?.username, 'github:octo-org/app')
    assert.ok(who?.groups?.includes('github-env:octo-org/app:prod'), JSON.stringify(who))
    assert.deepEqual(who?.extra?.['gatehouse.dev/subject'], ['repo:octo-org/app:environment:prod'])
    assert.deepEqual(who?.extra?.['gatehouse.dev/job-workflow-ref'], [
      'octo-org/app/.github/workflows/deploy.yml@refs/heads/main',
    ])
  })
})
