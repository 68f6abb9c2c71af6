// What the fake kubelet knows of a pod: read from the real API server, like a kubelet would.
import type { KubeClient } from '../kube-client.ts'

/** Annotations that script the fake container's behaviour in tests. */
export const ANNOTATION_LOG = 'gatehouse.test/log'
/** "COUNT,INTERVAL_MS": with follow=true, COUNT more lines, one per interval, then the container exits. */
export const ANNOTATION_FOLLOW = 'gatehouse.test/follow'
/**
 * JSON `[[text, pauseMs], ...]`: the log is written in these parts, each followed by its pause (a
 * value split by a pause longer than a masker's bounds); the stream ends after the last part.
 */
export const ANNOTATION_LOG_PARTS = 'gatehouse.test/log-parts'
/** `N`: the log is N bytes of generated application lines (benchmarks), every 50th with a card number. */
export const ANNOTATION_LOG_BYTES = 'gatehouse.test/log-bytes'
/** The argv (JSON array) of the container's main process, which `attach` connects to. */
export const ANNOTATION_ATTACH = 'gatehouse.test/attach-command'

export interface PodView {
  namespace: string
  name: string
  annotations: Record<string, string>
  containers: { name: string; env: Record<string, string> }[]
}

interface PodObject {
  metadata?: { annotations?: Record<string, string> }
  spec?: { containers?: { name: string; env?: { name: string; value?: string }[] }[] }
}

export async function lookupPod(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<PodView | undefined> {
  const res = await client.raw(
    'GET',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
  )
  if (res.statusCode !== 200) return undefined
  const pod = JSON.parse(res.body) as PodObject
  return {
    namespace,
    name,
    annotations: pod.metadata?.annotations ?? {},
    containers: (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      env: Object.fromEntries(
        (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
      ),
    })),
  }
}

export function containerEnv(pod: PodView, container: string): Record<string, string> {
  const c = pod.containers.find((x) => x.name === container)
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: pod.name,
    HOME: '/root',
    ...(c?.env ?? {}),
  }
}
