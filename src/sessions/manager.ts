// Sessions: every exec, attach, port-forward and log stream is recorded, limited and killable.
// The manager saves a session record before the first byte is relayed (fail closed: a session
// Gatehouse cannot record does not start), hands the connection to a StreamSession (or the log
// body to a RecordedLog), keeps the live ones for listing, kills and shutdown, and marks those a
// crashed run left behind as incomplete.
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { auditIdentity, auditSource } from '../audit/build.ts'
import type { SessionsConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { DecidedRequest } from '../request/facts.ts'
import { RecordedLog, type LogSession } from './log-session.ts'
import { recordingKey, type RecordingStore } from './recording.ts'
import type { SessionRepository } from './repository.ts'
import type { SessionRecord } from './record.ts'
import { dialectOf, execParameters, type SessionKind } from '../kube/remote-command.ts'
import { StreamSession } from './stream-session.ts'
import { maskText } from '../masking/text.ts'
import type { Masking } from '../masking/profile.ts'

export type { LogSession } from './log-session.ts'
import { sessionLimits, type LiveSession, type SessionLimits } from './limits.ts'
export { sessionLimits, type LiveSession, type SessionLimits } from './limits.ts'

/** A replica's name in session records: which process to ask about a live session. */
export function replicaName(dataDir: string): string {
  return `${hostname()}:${resolve(dataDir)}`
}

/** What the manager keeps of a live session: enough to list it, end it, and wait for it. */
interface LiveEntry {
  snapshot(): SessionRecord
  terminate(message: string, reason: string): void
  readonly ended: Promise<void>
}

export class SessionManager {
  readonly #store: SessionRepository
  readonly #recordings: RecordingStore
  readonly #defaults: SessionsConfig
  readonly #logger: Logger
  readonly #masking: Masking | undefined
  readonly replica: string
  readonly #live = new Map<string, LiveEntry>()
  #stopListening: (() => Promise<void>) | undefined

  constructor(opts: {
    store: SessionRepository
    recordings: RecordingStore
    defaults: SessionsConfig
    logger: Logger
    replica: string
    /**
     * gatehouse.yaml `masking:`: recordings use its records profile, and exec and attach output
     * reaches the client masked as the caller's policy decision says. Without it, recordings use
     * the default detectors and clients get output unmasked.
     */
    masking?: Masking
  }) {
    this.#store = opts.store
    this.#recordings = opts.recordings
    this.#defaults = opts.defaults
    this.#logger = opts.logger
    this.#masking = opts.masking
    this.replica = opts.replica
  }

  get recordings(): RecordingStore {
    return this.#recordings
  }

  /** Sessions this replica left live when it last stopped are incomplete: say so. */
  async recover(): Promise<number> {
    const stale = await this.#store.querySessions({
      state: 'live',
      replica: this.replica,
      limit: 10_000,
    })
    for (const s of stale)
      await this.#store.saveSession({
        ...s,
        state: 'incomplete',
        endReason:
          'Gatehouse stopped during the session (the recording holds what was written until then)',
      })
    return stale.length
  }

  live(): SessionRecord[] {
    return [...this.#live.values()].map((s) => s.snapshot())
  }

  /** Listens for kills sent to every replica; call once at start. */
  async listenForKills(): Promise<void> {
    this.#stopListening = await this.#store.onSessionKill((id, by) => {
      if (this.kill(id, by))
        this.#logger.warn(
          { session: id, by },
          'session killed by an administrator (via another replica)',
        )
    })
  }

  async close(): Promise<void> {
    await this.#stopListening?.()
  }

  /**
   * Ends a live session wherever it runs: here directly, or through the shared store on the
   * replica that relays it. Returns where the kill went, or why it could not.
   */
  async killAnywhere(
    id: string,
    by: string,
  ): Promise<
    | { killed: 'here' | 'broadcast' }
    | { error: 'not-found' | 'ended' | 'elsewhere'; session?: SessionRecord }
  > {
    if (this.kill(id, by)) return { killed: 'here' }
    const s = await this.#store.getSession(id)
    if (!s) return { error: 'not-found' }
    if (s.state !== 'live') return { error: 'ended', session: s }
    if (!this.#store.shared) return { error: 'elsewhere', session: s }
    await this.#store.broadcastSessionKill(id, by)
    return { killed: 'broadcast' }
  }

  /** Ends a live session on this replica; false when it is not live here. */
  kill(id: string, by: string): boolean {
    const s = this.#live.get(id)
    if (!s) return false
    s.terminate(`session terminated by a Gatehouse administrator (${by})`, `killed by ${by}`)
    return true
  }

  /**
   * Called when the API server answered an upgrade: saves the session record (throws a
   * GatewayError when it cannot be saved, and nothing is relayed) and returns the session.
   */
  async begin(
    facts: DecidedRequest,
    kind: SessionKind,
    responseHead: string,
  ): Promise<LiveSession> {
    const dialect = dialectOf(responseHead)
    if ('unknown' in dialect)
      throw new GatewayError(
        'GW_SESSION_UNSUPPORTED',
        `Gatehouse cannot record this session: ${dialect.unknown}`,
      )
    const limits = this.#limits(facts)
    const exec = execParameters(facts.info.query)
    const record = this.#newRecord(facts, kind, {
      container: exec.container,
      // the command line is kept masked like the recording (arguments can carry secrets)
      command:
        kind !== 'exec'
          ? []
          : limits.maskRecordings
            ? exec.command.map((a) => maskText(a, limits.recordMasking ?? {}).text)
            : exec.command,
      tty: exec.tty,
      stdin: exec.stdin,
      protocol: { transport: dialect.transport, subprotocol: dialect.subprotocol },
      stdinRecorded:
        limits.recordStdin === 'always' || (limits.recordStdin === 'nonInteractive' && !exec.tty),
    })
    await this.#saveFirst(record)
    // what the client receives of exec and attach (never port-forward's raw TCP)
    const clientMasking =
      kind === 'portforward' ? undefined : this.#masking?.forDecision(facts.decision)
    const session = new StreamSession({
      record,
      limits,
      dialect,
      query: facts.info.query,
      ...(clientMasking ? { clientMasking } : {}),
      store: this.#store,
      recordings: this.#recordings,
      logger: this.#logger,
      onEnd: () => this.#live.delete(record.id),
    })
    this.#live.set(record.id, session)
    this.#logger.info(
      {
        session: record.id,
        kind,
        identity: record.identity?.name,
        namespace: record.namespace,
        pod: record.pod,
        protocol: record.protocol,
      },
      'session started',
    )
    return session
  }

  /** Starts recording a pod's log stream; saved before the request goes upstream (fail closed). */
  async beginLog(facts: DecidedRequest): Promise<LogSession> {
    const query = facts.info.query
    const limits = this.#limits(facts)
    const record = this.#newRecord(facts, 'log', {
      container: query.get('container') ?? '',
      command: [],
      tty: false,
      stdin: false,
      protocol: {
        transport: 'http',
        subprotocol: query.get('follow') === 'true' ? 'log follow' : 'log',
      },
      stdinRecorded: false,
    })
    await this.#saveFirst(record)
    const log = new RecordedLog({
      record,
      limits,
      store: this.#store,
      recordings: this.#recordings,
      logger: this.#logger,
      query: query.toString(),
      onEnd: () => this.#live.delete(record.id),
    })
    this.#live.set(record.id, log)
    return log
  }

  #limits(facts: DecidedRequest): SessionLimits {
    return sessionLimits(
      this.#defaults,
      facts.decision.obligations.session,
      this.#masking?.forRecords,
    )
  }

  /** A new session record, state live, from the request and what the caller says of it. */
  #newRecord(
    facts: DecidedRequest,
    kind: SessionRecord['kind'],
    what: Pick<SessionRecord, 'container' | 'command' | 'tty' | 'stdin' | 'protocol'> & {
      stdinRecorded: boolean
    },
  ): SessionRecord {
    const startedAt = new Date()
    const { info, decision } = facts
    const { stdinRecorded, ...fields } = what
    return {
      id: facts.id,
      kind,
      state: 'live',
      startedAt: startedAt.toISOString(),
      replica: this.replica,
      cluster: facts.cluster,
      identity: auditIdentity(facts),
      principal: facts.principal ?? null,
      source: auditSource(facts),
      namespace: info.namespace,
      pod: info.name,
      ...fields,
      decision: { ...(decision.policy ? { policy: decision.policy } : {}), rule: decision.rule },
      bytes: { clientToUpstream: 0, upstreamToClient: 0 },
      recording: {
        key: recordingKey(facts.id, startedAt),
        format: 'asciicast-v2+gzip',
        bytes: 0,
        stdinRecorded,
      },
    }
  }

  /** Fail closed: a session whose record cannot be written does not start. */
  async #saveFirst(record: SessionRecord): Promise<void> {
    try {
      await this.#store.saveSession(record)
    } catch (e) {
      throw new GatewayError(
        'GW_AUDIT_UNAVAILABLE',
        `Gatehouse cannot record sessions right now (its audit store is failing); the ${record.kind === 'log' ? 'log stream' : 'session'} was not started`,
        { cause: e, detail: String(e) },
      )
    }
  }

  /** Ends every live session (shutdown): clients are told, records are saved. */
  async shutdown(): Promise<void> {
    const ends = [...this.#live.values()].map((s) => {
      s.terminate('Gatehouse is shutting down; start the session again', 'Gatehouse shut down')
      return s.ended
    })
    await Promise.allSettled(ends)
  }
}
