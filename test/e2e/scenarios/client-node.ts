// @kubernetes/client-node as a library client: typed CRUD, watch, logs and exec.
import assert from 'node:assert/strict'
import { PassThrough, Writable } from 'node:stream'
import { test } from 'node:test'
import { CoreV1Api, Exec, KubeConfig, Log, Watch, type V1Status } from '@kubernetes/client-node'
import { namespaceWithPods } from '../support.ts'
import { nsName, type Target } from './target.ts'

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk)
      cb()
    },
  })
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

export function clientNodeScenarios(target: () => Target): void {
  test('@kubernetes/client-node: CRUD, watch, logs and exec', async () => {
    const t = target()
    const namespace = nsName(t, 'client-node', 'lib')
    await namespaceWithPods(t.cluster, namespace, { worker: {} })
    const kc = new KubeConfig()
    kc.loadFromFile(await t.kubeconfig('client-node'))
    const core = kc.makeApiClient(CoreV1Api)

    const events: string[] = []
    const watchDone = new Promise<void>((resolve) => {
      void new Watch(kc)
        .watch(
          `/api/v1/namespaces/${namespace}/configmaps`,
          {},
          (phase, obj: { metadata: { name: string } }) => {
            events.push(`${phase} ${obj.metadata.name}`)
            if (phase === 'DELETED') resolve()
          },
          () => resolve(),
        )
        .then((ctl) => watchDone.then(() => ctl.abort()))
    })
    await new Promise((r) => setTimeout(r, 500))

    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'lib-cm' }, data: { k: 'v' } },
    })
    const read = await core.readNamespacedConfigMap({ namespace, name: 'lib-cm' })
    assert.deepEqual(read.data, { k: 'v' })
    const list = await core.listNamespacedConfigMap({ namespace })
    assert.deepEqual(
      list.items.map((i) => i.metadata?.name),
      ['lib-cm'],
    )
    await core.deleteNamespacedConfigMap({ namespace, name: 'lib-cm' })
    await watchDone
    assert.deepEqual(events, ['ADDED lib-cm', 'DELETED lib-cm'])

    const logs = collector()
    const req = await new Log(kc).log(namespace, 'worker', 'main', logs.stream, { follow: false })
    await new Promise<void>((resolve) =>
      logs.stream.writableFinished ? resolve() : logs.stream.on('finish', resolve),
    )
    req.abort()
    assert.equal(
      logs.text(),
      [1, 2, 3].map((i) => `log line ${i} of ${namespace}/worker/main\n`).join(''),
    )

    const stdout = collector()
    const stderr = collector()
    const stdin = new PassThrough()
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(kc)
        .exec(
          namespace,
          'worker',
          'main',
          ['sh', '-c', 'cat; echo done >&2; exit 2'],
          stdout.stream,
          stderr.stream,
          stdin,
          false,
          resolve,
        )
        .then(() => stdin.end('piped input\n'), reject)
    })
    assert.equal(stdout.text(), 'piped input\n')
    assert.equal(stderr.text(), 'done\n')
    assert.equal(status.status, 'Failure')
    assert.equal(status.reason, 'NonZeroExitCode')
    assert.equal(status.details?.causes?.[0]?.message, '2')
  })
}
