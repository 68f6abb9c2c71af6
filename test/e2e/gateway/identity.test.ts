// Who the cluster sees: through Gatehouse, every request reaches the API server as Gatehouse's
// own account impersonating the caller, with provenance in the user extras, and the
// Audit-ID Gatehouse sent is the one the API server logged (so both audit trails join).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { kubectl, readAuditEvents, waitForAuditEvent } from '../../harness/index.ts'
import { CI_REPOSITORY, GATEHOUSE_ACCOUNT, SA_NAMESPACE, useGatewayEnv } from './env.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)

describe('identity through Gatehouse', () => {
  test('a GitHub Actions identity is impersonated with its provenance; the Audit-ID is kept', async () => {
    const e = env()
    const token = await e.issuer.mintGitHubActions({
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
      run_id: '4242',
    })
    const kubeconfig = e.gatehouse.kubeconfig({ token })
    const marker = `identity-gh-${RUN}`
    const r = await kubectl(
      '1.32',
      ['get', 'configmap', marker, '-n', 'default', '--ignore-not-found'],
      { kubeconfig },
    )
    assert.equal(r.code, 0, r.stderr)
    const event = await waitForAuditEvent(
      e.cluster.auditLogPath,
      (ev) => ev.requestURI.includes(marker) && ev.stage === 'ResponseComplete',
    )
    assert.equal(event.user.username, GATEHOUSE_ACCOUNT)
    assert.equal(event.impersonatedUser?.username, `github:${CI_REPOSITORY}`)
    assert.ok(
      event.impersonatedUser?.groups?.includes('github:octo-org'),
      JSON.stringify(event.impersonatedUser),
    )
    const extra = event.impersonatedUser?.extra ?? {}
    assert.deepEqual(extra['gatehouse.dev/repository'], [CI_REPOSITORY])
    assert.deepEqual(extra['gatehouse.dev/run-id'], ['4242'])
    assert.deepEqual(extra['gatehouse.dev/issuer'], [e.issuer.url])
    assert.deepEqual(extra['gatehouse.dev/auth-method'], ['oidc'])
    // The API server kept the Audit-ID Gatehouse sent: it equals Gatehouse's request id.
    assert.deepEqual(extra['gatehouse.dev/request-id'], [event.auditID])
  })

  test('a token minted by the API server for a ServiceAccount is a third-party identity', async () => {
    const e = env()
    const kubeconfig = e.gatehouse.kubeconfig({
      token: await e.serviceAccountToken('identity-probe'),
    })
    const marker = `identity-sa-${RUN}`
    const r = await kubectl(
      '1.35',
      ['get', 'configmap', marker, '-n', 'default', '--ignore-not-found'],
      { kubeconfig },
    )
    assert.equal(r.code, 0, r.stderr)
    const event = await waitForAuditEvent(
      e.cluster.auditLogPath,
      (ev) => ev.requestURI.includes(marker) && ev.stage === 'ResponseComplete',
    )
    assert.equal(event.user.username, GATEHOUSE_ACCOUNT)
    const who = event.impersonatedUser
    assert.ok(who, 'the request was impersonated')
    assert.notEqual(
      who.username,
      `system:serviceaccount:${SA_NAMESPACE}:identity-probe`,
      'never the raw service-account name: it is a Gatehouse identity',
    )
    assert.ok(who.username.includes(`${SA_NAMESPACE}:identity-probe`), who.username)
    assert.ok(who.groups?.includes(`k8s-namespace:${SA_NAMESPACE}`), JSON.stringify(who))
    assert.deepEqual(who.extra?.['gatehouse.dev/serviceaccount'], ['identity-probe'])
  })

  test('client impersonation (kubectl --as) is refused with a Status and never forwarded', async () => {
    const e = env()
    const kubeconfig = e.gatehouse.kubeconfig({
      token: await e.issuer.mintGitHubActions({
        repository: CI_REPOSITORY,
        repository_owner: 'octo-org',
      }),
    })
    const marker = `identity-as-${RUN}`
    for (const args of [
      ['--as', 'admin'],
      ['--as', 'ci', '--as-group', 'system:masters'],
    ]) {
      const r = await kubectl('1.32', ['get', 'configmap', marker, '-n', 'default', ...args], {
        kubeconfig,
      })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /Error from server \(Forbidden\):.*impersonat/i)
    }
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(
      readAuditEvents(e.cluster.auditLogPath).filter((ev) => ev.requestURI.includes(marker)).length,
      0,
    )
  })

  test("nothing reached the cluster as Gatehouse's own account without impersonation", () => {
    const e = env()
    const own = readAuditEvents(e.cluster.auditLogPath).filter(
      (ev) => ev.user.username === GATEHOUSE_ACCOUNT,
    )
    assert.ok(own.length > 0, 'Gatehouse made requests in this run')
    // TokenReview (authenticating opaque tokens) and TokenRequest (serviceAccountToken
    // forwarding) are Gatehouse's own calls; everything else is on behalf of a caller and must
    // be impersonated.
    const ownCall = (ev: (typeof own)[number]): boolean =>
      ev.objectRef?.resource === 'tokenreviews' ||
      (ev.objectRef?.resource === 'serviceaccounts' && ev.objectRef.subresource === 'token')
    const unimpersonated = own.filter((ev) => !ev.impersonatedUser && !ownCall(ev))
    assert.deepEqual(
      unimpersonated.map((ev) => `${ev.verb} ${ev.requestURI}`),
      [],
    )
  })
})
