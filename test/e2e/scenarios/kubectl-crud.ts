// create/get/list/watch/patch/apply (client-side and server-side)/delete with real kubectl.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { kubectl, KUBECTL_VERSIONS, runBinary } from '../../harness/index.ts'
import { kubectlPath } from '../../harness/binaries.ts'
import { namespaceWithPods } from '../support.ts'
import { nsName, type Target } from './target.ts'

const configMap = (name: string, data: Record<string, string>): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data })

export function kubectlCrudScenarios(target: () => Target): void {
  for (const version of KUBECTL_VERSIONS) {
    describe(`kubectl ${version}: objects`, () => {
      test('create, get, list, patch, apply, server-side apply, delete', async () => {
        const t = target()
        const ns = nsName(t, 'crud', version)
        await namespaceWithPods(t.cluster, ns)
        const kubeconfig = await t.kubeconfig(version)
        const k = (args: string[], stdin?: string) =>
          kubectl(version, ['-n', ns, ...args], {
            kubeconfig,
            ...(stdin === undefined ? {} : { stdin }),
          })

        let r = await k(['create', '-f', '-'], configMap('cm1', { a: '1' }))
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'configmap/cm1 created\n')

        r = await k(['get', 'configmap', 'cm1', '-o', 'json'])
        assert.equal(r.code, 0, r.stderr)
        assert.deepEqual((JSON.parse(r.stdout) as { data: unknown }).data, { a: '1' })

        r = await k(['get', 'configmaps', '-o', 'name'])
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.stdout, /^configmap\/cm1$/m)

        r = await k(['patch', 'configmap', 'cm1', '--type', 'merge', '-p', '{"data":{"b":"2"}}'])
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'configmap/cm1 patched\n')
        r = await k(['get', 'configmap', 'cm1', '-o', 'jsonpath={.data.b}'])
        assert.equal(r.stdout, '2')

        r = await k(['apply', '-f', '-'], configMap('cm2', { v: 'one' }))
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'configmap/cm2 created\n')
        r = await k(['apply', '-f', '-'], configMap('cm2', { v: 'two' }))
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'configmap/cm2 configured\n')
        r = await k(['get', 'configmap', 'cm2', '-o', 'json'])
        const cm2 = JSON.parse(r.stdout) as {
          data: { v: string }
          metadata: { annotations: Record<string, string> }
        }
        assert.equal(cm2.data.v, 'two')
        assert.ok(
          cm2.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']?.includes(
            '"two"',
          ),
        )

        r = await k(['apply', '--server-side', '-f', '-'], configMap('cm3', { s: 'ssa' }))
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'configmap/cm3 serverside-applied\n')
        // kubectl 1.20 always prints managedFields; later versions hide them unless asked.
        r = await k([
          'get',
          'configmap',
          'cm3',
          '-o',
          'json',
          ...(version === '1.20' ? [] : ['--show-managed-fields']),
        ])
        assert.equal(r.code, 0, r.stderr)
        const cm3 = JSON.parse(r.stdout) as {
          metadata: { managedFields: { manager: string; operation: string }[] }
        }
        assert.ok(
          cm3.metadata.managedFields.some(
            (f) => f.operation === 'Apply' && f.manager.startsWith('kubectl'),
          ),
        )

        r = await k(['delete', 'configmap', 'cm1', 'cm2', 'cm3'])
        assert.equal(r.code, 0, r.stderr)
        // kubectl 1.35 and later name the namespace: 'configmap "cm1" deleted from NS namespace'.
        const named = version === '1.35' || version === '1.37'
        const deleted = (n: string) =>
          `configmap "${n}" deleted${named ? ` from ${ns} namespace` : ''}\n`
        assert.equal(r.stdout, deleted('cm1') + deleted('cm2') + deleted('cm3'))
        r = await k(['get', 'configmap', 'cm1'])
        assert.equal(r.code, 1)
        assert.match(r.stderr, /Error from server \(NotFound\): configmaps "cm1" not found/)
      })

      test('watch streams changes as they happen', async () => {
        const t = target()
        const ns = nsName(t, 'watch', version)
        await namespaceWithPods(t.cluster, ns)
        const kubeconfig = await t.kubeconfig(version)
        const abort = new AbortController()
        let seen = ''
        const watching = runBinary(
          kubectlPath(version),
          ['-n', ns, 'get', 'configmaps', '--watch', '-o', 'name'],
          {
            kubeconfig,
            signal: abort.signal,
            timeoutMs: 60_000,
            onStdout: (d) => (seen += d),
          },
        )
        // The watch is established once the initial (empty) list is through; give it a moment.
        await sleep(1500)
        for (const name of ['w1', 'w2']) {
          const r = await kubectl(
            version,
            ['-n', ns, 'create', 'configmap', name, '--from-literal=k=v'],
            { kubeconfig },
          )
          assert.equal(r.code, 0, r.stderr)
        }
        const deadline = Date.now() + 15_000
        while (
          !(seen.includes('configmap/w1') && seen.includes('configmap/w2')) &&
          Date.now() < deadline
        )
          await sleep(50)
        abort.abort()
        await watching
        assert.match(seen, /configmap\/w1\n/)
        assert.match(seen, /configmap\/w2\n/)
      })
    })
  }
}
