import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { execCredential, tokenExpiry } from '../../../src/cli/credential.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const jwt = (claims: object): string =>
  `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`

test('emits an ExecCredential with the token from a file and its expiry', () => {
  const dir = tempDir('gh-cred-')
  const token = jwt({ exp: 1_900_000_000 })
  writeFileSync(join(dir, 't'), `${token}\n`)
  const out = JSON.parse(execCredential({ tokenFile: join(dir, 't') }, {})) as Record<
    string,
    unknown
  >
  assert.deepEqual(out, {
    apiVersion: 'client.authentication.k8s.io/v1beta1',
    kind: 'ExecCredential',
    status: { token, expirationTimestamp: '2030-03-17T17:46:40Z' },
  })
})

test('answers in the API version kubectl asks for', () => {
  const out = JSON.parse(
    execCredential(
      { tokenEnv: 'CI_TOKEN' },
      {
        CI_TOKEN: 'opaque',
        KUBERNETES_EXEC_INFO:
          '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}',
      },
    ),
  ) as { apiVersion: string; status: Record<string, string> }
  assert.equal(out.apiVersion, 'client.authentication.k8s.io/v1')
  assert.deepEqual(out.status, { token: 'opaque' })
})

test('clear errors name the flag and the file or variable', () => {
  assert.throws(
    () => execCredential({ tokenFile: '/nonexistent/token' }, {}),
    /--token-file \/nonexistent\/token/,
  )
  assert.throws(
    () => execCredential({ tokenEnv: 'MISSING' }, {}),
    /MISSING \(--token-env\) is empty or not set/,
  )
  assert.throws(() => execCredential({}, {}), /give --token-file PATH or --token-env NAME/)
})

test('expiry is read only from well-formed JWTs', () => {
  assert.equal(tokenExpiry('not-a-jwt'), undefined)
  assert.equal(tokenExpiry('a.!!!.c'), undefined)
  assert.equal(tokenExpiry(jwt({ exp: 'soon' })), undefined)
})
