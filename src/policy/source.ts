// The live policy set: loaded at start (a broken set stops Gatehouse from starting), then
// reloaded whenever a policy file changes. A broken change keeps the last good set in force and
// says why, in the log and in /readyz, until a good version is saved.
import type { Logger } from '../observability/logger.ts'
import { PolicyCompileError, PolicySet } from './engine.ts'
import { listPolicyFiles, loadPolicies, PolicyLoadError } from './load.ts'

export interface PolicySourceStatus {
  policies: number
  rules: number
  loadedAt: string
  /** Why the newest files are not in force (the last good set is). */
  error?: string
}

export class PolicySource {
  #set: PolicySet
  #signature: string
  #status: PolicySourceStatus
  #timer: NodeJS.Timeout | undefined
  readonly #paths: readonly string[]
  readonly #logger: Logger | undefined

  /** Throws PolicyLoadError / PolicyCompileError when the initial set is broken. */
  constructor(paths: readonly string[], opts: { logger?: Logger; watchIntervalMs?: number } = {}) {
    this.#paths = paths
    this.#logger = opts.logger
    this.#signature = this.#currentSignature()
    this.#set = compilePolicies(paths)
    this.#status = this.#statusFor(this.#set)
    if (opts.watchIntervalMs && paths.length) {
      this.#timer = setInterval(() => this.reloadIfChanged(), opts.watchIntervalMs)
      this.#timer.unref()
    }
  }

  get current(): PolicySet {
    return this.#set
  }

  get status(): PolicySourceStatus {
    return this.#status
  }

  #currentSignature(): string {
    try {
      return listPolicyFiles(this.#paths)
        .map((f) => f.signature)
        .join('\n')
    } catch (e) {
      return `unreadable: ${(e as Error).message}`
    }
  }

  #statusFor(set: PolicySet): PolicySourceStatus {
    return {
      policies: set.policies.length,
      rules: set.ruleCount,
      loadedAt: new Date().toISOString(),
    }
  }

  /** Reloads when any file was added, removed or changed. Returns whether a new set is in force. */
  reloadIfChanged(): boolean {
    const signature = this.#currentSignature()
    if (signature === this.#signature) return false
    this.#signature = signature
    return this.reload()
  }

  reload(): boolean {
    try {
      const set = compilePolicies(this.#paths)
      this.#set = set
      this.#status = this.#statusFor(set)
      this.#logger?.info(
        { policies: this.#status.policies, rules: this.#status.rules },
        'policies reloaded',
      )
      return true
    } catch (e) {
      const problems =
        e instanceof PolicyLoadError || e instanceof PolicyCompileError ? e.problems : [String(e)]
      this.#status = { ...this.#status, error: problems.join('; ') }
      this.#logger?.warn(
        { problems },
        'policy change rejected: the last good policy set stays in force',
      )
      return false
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer)
  }
}

export function compilePolicies(paths: readonly string[]): PolicySet {
  return new PolicySet(loadPolicies(paths))
}
