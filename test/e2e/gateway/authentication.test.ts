// Hostile and broken credentials: each gets a 401/403 Kubernetes Status from Gatehouse, and the
// request never reaches the API server (checked against the API server's own audit log).
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { readAuditEvents, waitForAuditEvent } from '../../harness/index.ts'
import { CI_REPOSITORY, useGatewayEnv } from './env.ts'

const env = useGatewayEnv()
const RUN = Math.random().toString(36).slice(2, 8)

interface Reply {
  status: number
  body: Record<string, unknown>
}

function send(path: string, headers: Record<string, string>): Promise<Reply> {
  const e = env()
  const url = new URL(e.gatehouse.url)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'GET',
        headers: { accept: 'application/json', ...headers },
        ca: readFileSync(e.gatehouse.caFile),
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
            })
          } catch {
            reject(new Error(`not a JSON Status (HTTP ${res.statusCode}): ${text.slice(0, 200)}`))
          }
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const now = (): number => Math.floor(Date.now() / 1000)
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')

describe('authentication refusals through Gatehouse', () => {
  const cases: {
    name: string
    headers: () => Promise<Record<string, string>>
    status: number
    reason: string
  }[] = [
    {
      name: 'missing token',
      headers: () => Promise.resolve({}),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'not a bearer token',
      headers: () => Promise.resolve({ authorization: 'Basic YWRtaW46YWRtaW4=' }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'garbage bearer token',
      headers: () => Promise.resolve({ authorization: 'Bearer not-a-jwt' }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'expired',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'not yet valid',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions({ nbf: now() + 3600, exp: now() + 7200 })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'wrong issuer',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions({ iss: 'https://token.actions.githubusercontent.com' })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'wrong audience',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions({ aud: 'sts.amazonaws.com' })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'unknown kid (signed by a key the issuer never published)',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mint(githubClaims(), { signWith: 'foreign' })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'alg none',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mint(githubClaims(), { alg: 'none' })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'HS256 signed with the RSA public key',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mint(githubClaims(), { alg: 'HS256' })}`,
      }),
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'tampered signature',
      headers: async () => {
        const token = await env().issuer.mintGitHubActions()
        const last = token.at(-2) === 'A' ? 'B' : 'A'
        return { authorization: `Bearer ${token.slice(0, -2)}${last}${token.at(-1)}` }
      },
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'tampered claims (repository swapped, signature kept)',
      headers: async () => {
        const [h, , s] = (await env().issuer.mintGitHubActions()).split('.')
        return {
          authorization: `Bearer ${h}.${b64({ ...githubClaims(), repository: 'evil/repo' })}.${s}`,
        }
      },
      status: 401,
      reason: 'Unauthorized',
    },
    {
      name: 'valid token with client-sent Impersonate-User',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions()}`,
        'impersonate-user': 'admin',
      }),
      status: 403,
      reason: 'Forbidden',
    },
    {
      name: 'valid token with client-sent Impersonate-Group system:masters',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions()}`,
        'impersonate-group': 'system:masters',
      }),
      status: 403,
      reason: 'Forbidden',
    },
    {
      name: 'valid token with client-sent Impersonate-Extra',
      headers: async () => ({
        authorization: `Bearer ${await env().issuer.mintGitHubActions()}`,
        'impersonate-extra-scopes': 'all',
      }),
      status: 403,
      reason: 'Forbidden',
    },
  ]

  function githubClaims(): Record<string, unknown> {
    const e = env()
    return {
      iss: e.issuer.url,
      aud: 'gatehouse',
      sub: `repo:${CI_REPOSITORY}:ref:refs/heads/main`,
      repository: CI_REPOSITORY,
      repository_owner: 'octo-org',
      ref: 'refs/heads/main',
      iat: now() - 10,
      nbf: now() - 10,
      exp: now() + 600,
    }
  }

  const markers: string[] = []
  for (const [i, c] of cases.entries()) {
    test(`${c.name}: ${c.status} ${c.reason} Status, nothing forwarded`, async () => {
      const marker = `neg-${RUN}-${i}`
      markers.push(marker)
      const reply = await send(
        `/clusters/harness/api/v1/namespaces/default/configmaps/${marker}`,
        await c.headers(),
      )
      assert.equal(reply.status, c.status)
      assert.equal(reply.body['kind'], 'Status')
      assert.equal(reply.body['apiVersion'], 'v1')
      assert.equal(reply.body['status'], 'Failure')
      assert.equal(reply.body['reason'], c.reason)
      assert.equal(reply.body['code'], c.status)
      assert.equal(typeof reply.body['message'], 'string')
      // Why a token was refused goes to Gatehouse's log, never to the caller.
      assert.doesNotMatch(String(reply.body['message']), /signature|kid|expired|audience/i)
    })
  }

  test('none of the refused requests reached the API server, while a valid one did', async () => {
    const e = env()
    const control = `neg-${RUN}-control`
    const ok = await send(`/clusters/harness/api/v1/namespaces/default/configmaps/${control}`, {
      authorization: `Bearer ${await e.issuer.mintGitHubActions()}`,
    })
    assert.equal(
      ok.status,
      404,
      'the valid request reached the cluster (the ConfigMap does not exist)',
    )
    await waitForAuditEvent(e.cluster.auditLogPath, (ev) => ev.requestURI.includes(control))
    const leaked = readAuditEvents(e.cluster.auditLogPath).filter((ev) =>
      markers.some((m) => ev.requestURI.endsWith(m)),
    )
    assert.deepEqual(
      leaked.map((ev) => ev.requestURI),
      [],
    )
    assert.equal(markers.length, cases.length)
  })
})
