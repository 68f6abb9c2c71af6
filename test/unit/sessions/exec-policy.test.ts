// Policy rules on exec and attach: the command line (globs, CEL over argv), the container, tty
// and stdin; session obligations merged from the policy and the rule.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseRequestInfo } from '../../../src/kube/request-info.ts'
import { parsePolicyText, type PolicySet } from '../../../src/policy/index.ts'
import { execParameters } from '../../../src/kube/remote-command.ts'
import { identity, policySet } from '../policy/helpers.ts'

const BOT = identity('k8s:serviceaccount:ops:db-bot')

function execDecision(set: PolicySet, url: string) {
  const r = parseRequestInfo('POST', url)
  if (!r.ok) throw new Error(r.reason)
  const query = new URLSearchParams(url.split('?')[1] ?? '')
  return set.evaluate({
    cluster: 'prod',
    info: r.info,
    identity: BOT,
    exec: execParameters(query),
  })
}

const policy = `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata: { name: bots }
spec:
  subjects: [{ name: 'k8s:serviceaccount:ops:*' }]
  session: { maxDuration: 30m, recordStdin: always }
  rules:
    - name: pg-dump
      action: allow
      verbs: ['*']
      resources: [pods/exec]
      exec: { commands: ['pg_dump', 'pg_dump *'], containers: [postgres], tty: false }
      session: { maxDuration: 10m, idleTimeout: 60s }
    - name: no-shells
      action: deny
      verbs: ['*']
      resources: [pods/exec, pods/attach]
      exec: { commands: ['sh', 'sh *', '*/sh', '*/sh *', 'bash', 'bash *', '*/bash', '*/bash *'] }
      message: no shells for bots
    - name: no-rm
      action: deny
      verbs: ['*']
      resources: [pods/exec]
      when: request.exec.command.exists(a, a == 'rm')
    - name: no-interactive
      action: deny
      verbs: ['*']
      resources: [pods/exec, pods/attach]
      exec: { tty: true }
`

const base = '/api/v1/namespaces/db/pods/pg-0'
const exec = (args: string[], more = '') =>
  `${base}/exec?${args.map((a) => `command=${encodeURIComponent(a)}`).join('&')}&container=postgres&stdout=true${more}`

describe('exec rules', () => {
  const set = policySet(policy)

  test('allowed command, container and no tty: allow with the rule session merged over the policy one', () => {
    const d = execDecision(set, exec(['pg_dump', '--schema-only', 'app']))
    assert.equal(d.action, 'allow')
    assert.equal(d.rule, 'pg-dump')
    assert.deepEqual(d.obligations.session, {
      maxDuration: 600,
      idleTimeout: 60,
      recordStdin: 'always',
    })
  })

  test('shells are denied however they are spelled; the deny names its rule', () => {
    for (const argv of [
      ['sh'],
      ['sh', '-c', 'id'],
      ['/bin/sh', '-c', 'id'],
      ['bash'],
      ['/usr/bin/bash', '-l'],
    ]) {
      const d = execDecision(set, exec(argv))
      assert.equal(d.action, 'deny', argv.join(' '))
      assert.equal(d.rule, 'no-shells', argv.join(' '))
      assert.equal(d.message, 'no shells for bots')
    }
  })

  test('CEL over the argv list', () => {
    const d = execDecision(set, exec(['pg_dump', 'x', 'rm']))
    assert.equal(d.rule, 'no-rm')
  })

  test('other containers, a TTY and other commands are not allowed (default deny or the tty rule)', () => {
    assert.equal(
      execDecision(set, exec(['pg_dump']).replace('container=postgres', 'container=app')).rule,
      'builtin:default-deny',
    )
    assert.equal(
      execDecision(set, exec(['pg_dump'], '&tty=true&stdin=true')).rule,
      'no-interactive',
    )
    assert.equal(execDecision(set, exec(['psql'])).rule, 'builtin:default-deny')
    // attach has no command: command rules never match it, the tty rule does
    assert.equal(
      execDecision(set, `${base}/attach?container=postgres&tty=true&stdin=true`).rule,
      'no-interactive',
    )
  })

  test('exec rules never match requests that are not exec or attach', () => {
    const r = parseRequestInfo('GET', `${base}/log`)
    if (!r.ok) throw new Error(r.reason)
    const d = set.evaluate({ cluster: 'prod', info: r.info, identity: BOT })
    assert.equal(d.rule, 'builtin:default-deny')
  })

  test('invalid session and exec fields are errors naming the field', () => {
    const bad = policy
      .replace('maxDuration: 10m', 'maxDuration: 10 minutes')
      .replace('tty: false', 'tty: no-thanks')
    const { problems } = parsePolicyText(bad, 'bots.yaml')
    assert.ok(
      problems.some((p) => p.includes('session.maxDuration') && p.includes('90s, 30m or 2h')),
      problems.join('\n'),
    )
    assert.ok(
      problems.some((p) => p.includes('exec.tty')),
      problems.join('\n'),
    )
  })
})
