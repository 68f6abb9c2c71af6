// helm install / upgrade / uninstall of the fixture chart with real helm 4.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { helm, kubectl } from '../../harness/index.ts'
import { namespaceWithPods } from '../support.ts'
import { nsName, type Target } from './target.ts'

// Charts are not compiled: resolve from the build output back to the source tree.
export const HELLO_CHART = join(
  fileURLToPath(import.meta.url),
  '..',
  '..',
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'charts',
  'hello',
)

export function helmScenarios(target: () => Target): void {
  test('helm: install, upgrade and uninstall a chart', async () => {
    const t = target()
    const ns = nsName(t, 'helm', 'v4')
    await namespaceWithPods(t.cluster, ns)
    const kubeconfig = await t.kubeconfig('helm')
    const kubectlConfig = await t.kubeconfig('1.32')

    let r = await helm(['install', 'greeter', HELLO_CHART, '-n', ns, '--set', 'greeting=hi'], {
      kubeconfig,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /STATUS: deployed/)
    r = await kubectl(
      '1.32',
      ['-n', ns, 'get', 'configmap', 'greeter-config', '-o', 'jsonpath={.data.greeting}'],
      {
        kubeconfig: kubectlConfig,
      },
    )
    assert.equal(r.stdout, 'hi')

    r = await helm(['upgrade', 'greeter', HELLO_CHART, '-n', ns, '--set', 'greeting=bye'], {
      kubeconfig,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /REVISION: 2/)
    r = await helm(['list', '-n', ns, '-o', 'json'], { kubeconfig })
    const releases = JSON.parse(r.stdout) as { name: string; revision: string; status: string }[]
    assert.deepEqual(
      releases.map((x) => [x.name, String(x.revision), x.status]),
      [['greeter', '2', 'deployed']],
    )

    r = await helm(['uninstall', 'greeter', '-n', ns], { kubeconfig })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /release "greeter" uninstalled/)
    r = await kubectl('1.32', ['-n', ns, 'get', 'configmap', 'greeter-config'], {
      kubeconfig: kubectlConfig,
    })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /NotFound/)
  })
}
