// GET /containerLogs/{namespace}/{pod}/{container}: the text the API server streams to `kubectl logs`.
import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ANNOTATION_FOLLOW, ANNOTATION_LOG, type PodView } from './pods.ts'

export function initialLog(pod: PodView, container: string): string {
  return (
    pod.annotations[ANNOTATION_LOG] ??
    [1, 2, 3].map((i) => `log line ${i} of ${pod.namespace}/${pod.name}/${container}\n`).join('')
  )
}

function tail(text: string, tailLines: number | undefined): string {
  if (tailLines === undefined || tailLines < 0) return text
  const lines = text.split(/(?<=\n)/)
  return lines.slice(Math.max(0, lines.length - tailLines)).join('')
}

export async function serveLogs(
  pod: PodView,
  container: string,
  query: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  const follow = query.get('follow') === 'true' || query.get('follow') === '1'
  const tailParam = query.get('tailLines')
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })
  res.flushHeaders()
  const write = (s: string): Promise<void> =>
    new Promise((resolve) => (res.write(s) ? resolve() : res.once('drain', resolve)))
  await write(tail(initialLog(pod, container), tailParam === null ? undefined : Number(tailParam)))
  if (follow) {
    const [countText, intervalText] = (pod.annotations[ANNOTATION_FOLLOW] ?? '').split(',')
    const count = countText ? Number(countText) : Number.POSITIVE_INFINITY
    const interval = Number(intervalText ?? '500') || 500
    let closed = false
    res.once('close', () => (closed = true))
    for (let i = 1; i <= count && !closed; i++) {
      await sleep(interval)
      if (!closed) await write(`follow line ${i} of ${pod.namespace}/${pod.name}/${container}\n`)
    }
  }
  res.end()
}
