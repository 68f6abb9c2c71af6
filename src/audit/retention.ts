// Retention: records older than the configured period are removed, hourly, in the background.
import type { Logger } from '../observability/logger.ts'
import type { AuditStore } from './store.ts'
import type { RecordingStore } from '../sessions/recording.ts'

export function startRetention(
  store: AuditStore,
  retentionDays: number,
  opts: { logger?: Logger; intervalMs?: number; recordings?: RecordingStore } = {},
): { stop(): void; runOnce(): Promise<number> } {
  const runOnce = async (): Promise<number> => {
    if (retentionDays <= 0) return 0
    const cutoff = Date.now() - retentionDays * 86_400_000
    const removed = await store.deleteBefore(cutoff)
    const recordings = (await opts.recordings?.deleteBefore(cutoff)) ?? 0
    if (recordings)
      opts.logger?.info({ recordings, retentionDays }, 'expired session recordings removed')
    if (removed) opts.logger?.info({ removed, retentionDays }, 'expired audit records removed')
    return removed
  }
  const tick = (): void => {
    runOnce().catch((e: unknown) =>
      opts.logger?.warn({ error: String(e) }, 'audit retention run failed; retried next hour'),
    )
  }
  const timer = retentionDays > 0 ? setInterval(tick, opts.intervalMs ?? 3_600_000) : undefined
  timer?.unref()
  if (retentionDays > 0) setTimeout(tick, 5_000).unref()
  return {
    stop() {
      if (timer) clearInterval(timer)
    },
    runOnce,
  }
}
