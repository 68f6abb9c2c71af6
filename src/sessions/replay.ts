// Replays a recording: what the client received on stdout and stderr, byte for byte, at the
// original pace (or faster), or at once. Terminal output of TTY sessions (stderr is merged into
// stdout by the terminal) plays back exactly as the user saw it.
import { setTimeout as sleep } from 'node:timers/promises'
import type { AsciicastEvent } from './recording.ts'

export interface ReplayOptions {
  /** 1 = original pace, 2 = twice as fast; Infinity = at once. */
  speed: number
  /** Longest pause between two events, in seconds (long idle stretches are shortened). */
  maxIdleSeconds?: number
}

export async function replay(
  events: readonly AsciicastEvent[],
  out: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  opts: ReplayOptions,
): Promise<void> {
  let last = 0
  for (const [t, code, data] of events) {
    if (typeof data !== 'string') continue
    const target =
      code === 'o' || code === 'ob'
        ? out.stdout
        : code === 'e' || code === 'eb'
          ? out.stderr
          : undefined
    if (!target) continue
    if (Number.isFinite(opts.speed)) {
      let wait = Math.max(0, t - last)
      if (opts.maxIdleSeconds !== undefined) wait = Math.min(wait, opts.maxIdleSeconds)
      if (wait > 0) await sleep((wait * 1000) / opts.speed)
    }
    last = t
    const bytes = code.endsWith('b') ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8')
    if (!target.write(bytes)) await new Promise((r) => target.once('drain', r))
  }
}

/** One line per event, for reading a recording as text: time, stream, data. */
export function transcript(events: readonly AsciicastEvent[]): string {
  const names: Record<string, string> = {
    o: 'stdout',
    e: 'stderr',
    i: 'stdin',
    r: 'resize',
    x: 'exit',
    c: 'port',
    pi: 'to-pod',
    po: 'from-pod',
    g: 'gatehouse',
    ob: 'stdout',
    eb: 'stderr',
    ib: 'stdin',
  }
  return (
    events
      .map(([t, code, data]) => {
        const text =
          typeof data === 'string'
            ? code.endsWith('b') || code === 'pi' || code === 'po'
              ? `(base64) ${data}`
              : JSON.stringify(data)
            : JSON.stringify(data)
        return `${t.toFixed(3).padStart(10)}  ${(names[code] ?? code).padEnd(9)} ${text}`
      })
      .join('\n') + '\n'
  )
}
