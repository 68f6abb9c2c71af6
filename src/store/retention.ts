// Retention: what is older than the configured period is removed, hourly, in the background:
// the rows of every repository handed in (each keeps what must stay, such as live sessions and
// pending approvals), then the session recordings.
import type { Logger } from '../observability/logger.ts'

/** Something whose old entries expire: a repository, or the recording store. */
export interface Expiring {
  /** Removes what was created before `timeMs` (and may go); resolves to how many. */
  deleteBefore(timeMs: number): Promise<number>
}

export function startRetention(
  stores: readonly Expiring[],
  retentionDays: number,
  opts: { logger?: Logger; intervalMs?: number; recordings?: Expiring } = {},
): { stop(): void; runOnce(): Promise<number> } {
  const runOnce = async (): Promise<number> => {
    if (retentionDays <= 0) return 0
    const cutoff = Date.now() - retentionDays * 86_400_000
    let removed = 0
    for (const s of stores) removed += await s.deleteBefore(cutoff)
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
