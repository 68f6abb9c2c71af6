// Change notifications within one process: what SQLite offers in place of PostgreSQL's
// LISTEN/NOTIFY (postgres.ts). The semantics are the same: every listener of a channel hears
// every payload sent on it, the sender's own listeners included, asynchronously (never inside
// `notify`), and a listener that throws disturbs no other.
import type { Notifications } from './database.ts'

export function inProcessNotifications(): Notifications & { close(): void } {
  const channels = new Map<string, Set<(payload: string) => void>>()
  return {
    notify(channel, payload) {
      const set = channels.get(channel)
      for (const handler of set ?? [])
        setImmediate(() => {
          if (!set?.has(handler)) return // unsubscribed meanwhile
          try {
            handler(payload)
          } catch {
            // the listener's own failure: ignored, as a PostgreSQL listener's is
          }
        })
      return Promise.resolve()
    },
    listen(channel, handler) {
      // One entry per subscription, even for the same function subscribed twice.
      const entry = (payload: string): void => handler(payload)
      const set = channels.get(channel) ?? new Set()
      set.add(entry)
      channels.set(channel, set)
      return Promise.resolve(() => {
        set.delete(entry)
        if (set.size === 0 && channels.get(channel) === set) channels.delete(channel)
        return Promise.resolve()
      })
    },
    close() {
      channels.clear()
    },
  }
}
