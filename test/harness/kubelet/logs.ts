// GET /containerLogs/{namespace}/{pod}/{container}: the text the API server streams to `kubectl logs`.
import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ANNOTATION_FOLLOW,
  ANNOTATION_LOG,
  ANNOTATION_LOG_BYTES,
  ANNOTATION_LOG_PARTS,
  type PodView,
} from './pods.ts'

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

/** `bytes` of application log lines in 64 KiB writes, every 50th line carrying a card number. */
async function writeGenerated(
  bytes: number,
  write: (s: string) => Promise<void>,
  closed: () => boolean,
): Promise<void> {
  let sent = 0
  let line = 0
  while (sent < bytes && !closed()) {
    let chunk = ''
    while (chunk.length < 64 * 1024) {
      line++
      chunk +=
        line % 50 === 0
          ? `2026-11-30T12:00:00.000Z INFO payment ${line} accepted card=4111 1111 1111 1111 amount=12.50\n`
          : `2026-11-30T12:00:00.000Z INFO request ${line} GET /api/orders 200 in 3ms user=alice\n`
    }
    chunk = chunk.slice(0, bytes - sent)
    sent += chunk.length
    await write(chunk)
  }
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
  const parts = pod.annotations[ANNOTATION_LOG_PARTS]
  if (parts !== undefined) {
    let closed = false
    res.once('close', () => (closed = true))
    for (const [text, pauseMs] of JSON.parse(parts) as [string, number][]) {
      if (closed) break
      await write(text)
      await sleep(pauseMs)
    }
    res.end()
    return
  }
  const generated = Number(pod.annotations[ANNOTATION_LOG_BYTES] ?? 0)
  if (generated > 0) {
    let closed = false
    res.once('close', () => (closed = true))
    await writeGenerated(generated, write, () => closed)
    res.end()
    return
  }
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
