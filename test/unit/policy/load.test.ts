// Loading policies from files and folders: precise errors, and reload that never leaves
// Gatehouse without a valid policy set.
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { loadPolicies, PolicyLoadError, PolicySource } from '../../../src/policy/index.ts'
import { repoRoot } from '../../harness/binaries.ts'
import { CI, decide, header } from './helpers.ts'
import { tempDir } from '../../harness/temp-dir.ts'

const good = `${header}metadata: {name: readers}
spec:
  subjects: [{name: '*'}]
  rules: [{name: read, action: allow, verbs: [get, list]}]
`

function problems(text: string): string[] {
  const dir = tempDir('gh-policy-')
  writeFileSync(join(dir, 'p.yaml'), text)
  try {
    loadPolicies([dir])
  } catch (e) {
    assert.ok(e instanceof PolicyLoadError)
    return e.problems
  }
  return []
}

describe('policy loading', () => {
  it('names the file, document, policy and field of every problem', () => {
    const p = problems(`${good}---
${header}metadata: {name: broken}
spec:
  subjects: [{name: '*'}]
  rules:
    - {name: r, action: block, verbs: [get]}
    - {name: s, action: deny, verbs: [gett], resources: [secret], namespace: [prod]}
`)
    const text = p.join('\n')
    assert.match(text, /p\.yaml#2 \(policy 'broken'\): spec\.rules\[0\]\.action: /)
    assert.match(text, /spec\.rules\[1\]\.verbs\[0\]/)
    assert.match(
      text,
      /spec\.rules\[1\]\.resources\[0\]: 'secret' is a kind in the singular; rules name resources in the plural \('secrets'\)/,
    )
    assert.match(text, /spec\.rules\[1\]: unknown field\(s\) 'namespace'/)
  })

  it('reports YAML syntax errors with the file', () => {
    const p = problems('apiVersion: [unclosed\n')
    assert.equal(p.length >= 1, true)
    assert.match(p[0]!, /p\.yaml/)
  })

  it('refuses a subject that matches nothing in particular and rules mixing paths and resources', () => {
    const p = problems(`${header}metadata: {name: x}
spec:
  subjects: [{}]
  rules: [{name: r, action: allow, verbs: [get], nonResourceURLs: [/healthz], resources: [pods]}]
`).join('\n')
    assert.match(p, /spec\.subjects\[0\]: a subject needs at least one of/)
    assert.match(p, /nonResourceURLs cannot be combined with resources/)
  })

  it('refuses two policies with one name, in different files', () => {
    const dir = tempDir('gh-policy-')
    writeFileSync(join(dir, 'a.yaml'), good)
    writeFileSync(join(dir, 'b.yaml'), good)
    const set = (): unknown => new PolicySource([dir])
    assert.throws(set, /b\.yaml: metadata\.name: policy 'readers' is also defined in .*a\.yaml/)
  })

  it('reads a ConfigMap-mounted folder (..data symlinks) and ignores non-policy files', () => {
    const dir = tempDir('gh-policy-')
    mkdirSync(join(dir, '..2026_11_24'))
    writeFileSync(join(dir, '..2026_11_24', 'readers.yaml'), good)
    symlinkSync('..2026_11_24', join(dir, '..data'))
    symlinkSync(join('..data', 'readers.yaml'), join(dir, 'readers.yaml'))
    writeFileSync(join(dir, 'README.md'), '# not a policy')
    assert.deepEqual(
      loadPolicies([dir]).map((p) => p.doc.metadata.name),
      ['readers'],
    )
  })

  it('loads every shipped example without problems', () => {
    const loaded = loadPolicies([join(repoRoot, 'examples', 'policies')])
    assert.ok(loaded.length >= 6, `examples: ${loaded.map((p) => p.doc.metadata.name).join(', ')}`)
  })
})

describe('policy reload', () => {
  it('picks up a change, keeps the last good set when a file breaks, and recovers', () => {
    const dir = tempDir('gh-policy-')
    const file = join(dir, 'p.yaml')
    writeFileSync(file, good)
    const source = new PolicySource([dir])
    assert.equal(decide(source.current, CI, 'GET', '/api/v1/pods').action, 'allow')
    assert.equal(decide(source.current, CI, 'DELETE', '/api/v1/namespaces/a/pods/x').action, 'deny')

    writeFileSync(file, good.replace('[get, list]', '[get, list, delete]') + '\n')
    assert.equal(source.reloadIfChanged(), true)
    assert.equal(
      decide(source.current, CI, 'DELETE', '/api/v1/namespaces/a/pods/x').action,
      'allow',
    )
    assert.equal(source.status.error, undefined)

    writeFileSync(file, good.replace('verbs: [get, list]', 'verbs: [get, list, destroy]'))
    assert.equal(source.reloadIfChanged(), false)
    // the last good set (with delete) is still in force, and the status says why the new one is not
    assert.equal(
      decide(source.current, CI, 'DELETE', '/api/v1/namespaces/a/pods/x').action,
      'allow',
    )
    assert.match(
      source.status.error ?? '',
      /p\.yaml \(policy 'readers'\): spec\.rules\[0\]\.verbs\[2\]/,
    )

    writeFileSync(file, good)
    assert.equal(source.reloadIfChanged(), true)
    assert.equal(source.status.error, undefined)
    assert.equal(decide(source.current, CI, 'DELETE', '/api/v1/namespaces/a/pods/x').action, 'deny')
    source.close()
  })

  it('a deleted policy file removes its policies (and its grants)', () => {
    const dir = tempDir('gh-policy-')
    writeFileSync(join(dir, 'p.yaml'), good)
    const source = new PolicySource([dir])
    assert.equal(source.status.policies, 1)
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '')
    source.reloadIfChanged()
    assert.equal(source.status.policies, 0)
    assert.equal(decide(source.current, CI, 'GET', '/api/v1/pods').action, 'deny')
    source.close()
  })
})
