// A clock that moves only when the test says so: streams pause for seconds without sleeping.
import type { Clock } from '../../../src/masking/stream-set.ts'

export class ManualClock implements Clock {
  #now = 0
  #next = 0
  readonly #timers = new Map<number, { at: number; fn: () => void }>()

  now(): number {
    return this.#now
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#next
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number)
  }

  /** Moves time on by `ms`, running the timers that fall due on the way, in order. */
  advance(ms: number): void {
    const end = this.#now + ms
    for (let fired = 0; ; fired++) {
      // a timer that keeps re-arming itself for a time already passed is a bug being tested for
      if (fired > 10_000) throw new Error(`timers keep firing at ${this.#now} ms`)
      let due: [number, { at: number; fn: () => void }] | undefined
      for (const t of this.#timers) if (t[1].at <= end && (!due || t[1].at < due[1].at)) due = t
      if (!due) break
      this.#timers.delete(due[0])
      this.#now = Math.max(this.#now, due[1].at)
      due[1].fn()
    }
    this.#now = end
  }

  get pending(): number {
    return this.#timers.size
  }
}
