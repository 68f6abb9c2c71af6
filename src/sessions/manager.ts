// Sessions: every exec, attach, port-forward and log stream is recorded, limited and killable.
// The manager saves a session record before the first byte is relayed (fail closed: a session
// Gatehouse cannot record does not start), hands the connection to a StreamSession (or the log
// body to a RecordedLog), keeps the live ones for listing, kills and shutdown, and marks those a
// crashed run left behind as incomplete.
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import { buildAuditRecord } from '../audit/index.ts'
import type { SessionsConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { RequestContext } from '../pipeline/context.ts'
import type { SessionObligations } from '../policy/index.ts'
import { RecordedLog, type LogSession } from './log-session.ts'
import { recordingKey, type RecordingStore } from './recording.ts'
import type { SessionRepository } from './repository.ts'
import type { SessionRecord } from './record.ts'
import { dialectOf, execParameters, type SessionKind } from './remote-command.ts'
import type { RelayEnd } from './relay.ts'
import { StreamSession } from './stream-session.ts'
import { maskText } from '../masking/text.ts'
import type { Masking } from '../masking/profile.ts'
import type { TextMasking } from './masked-streams.ts'

export type { LogSession } from './log-session.ts'

/** The limits and recording settings of one session: the config defaults, then the policy's. */
export interface SessionLimits {
  maxDurationSeconds: number
  idleTimeoutSeconds: number
  maxRecordingBytes: number
  onRecordingLimit: 'terminate' | 'stopRecording'
  recordStdin: 'always' | 'nonInteractive' | 'never'
  portForwardCaptureBytes: number
  /** Mask secrets and regulated values in recordings (gatehouse.yaml sessions.maskRecordings). */
  maskRecordings: boolean
  /** How recordings are masked (gatehouse.yaml masking:); the default detectors without it. */
  recordMasking?: TextMasking | undefined
}

export function sessionLimits(
  defaults: SessionsConfig,
  policy: SessionObligations | undefined,
  recordMasking?: TextMasking,
): SessionLimits {
  return {
    recordMasking,
    maxDurationSeconds: policy?.maxDuration ?? defaults.maxDurationSeconds,
    idleTimeoutSeconds: policy?.idleTimeout ?? defaults.idleTimeoutSeconds,
    maxRecordingBytes: policy?.maxRecordingBytes ?? defaults.maxRecordingBytes,
    onRecordingLimit: policy?.onRecordingLimit ?? defaults.onRecordingLimit,
    recordStdin: policy?.recordStdin ?? defaults.recordStdin,
    portForwardCaptureBytes: policy?.portForwardCaptureBytes ?? defaults.portForwardCaptureBytes,
    maskRecordings: defaults.maskRecordings,
  }
}

/** The session kind of a request, or undefined when it is not one. */
export function sessionKindOf(ctx: RequestContext): SessionKind | undefined {
  const info = ctx.requestInfo
  if (!ctx.upgrade || !info?.isResourceRequest || info.apiGroup !== '' || info.resource !== 'pods')
    return undefined
  if (
    info.subresource === 'exec' ||
    info.subresource === 'attach' ||
    info.subresource === 'portforward'
  )
    return info.subresource
  return undefined
}

/** A replica's name in session records: which process to ask about a live session. */
export function replicaName(dataDir: string): string {
  return `${hostname()}:${resolve(dataDir)}`
}

export interface LiveSession {
  readonly record: SessionRecord
  /**
   * Relays the upgraded connection; resolves once the session ended and its record is saved.
   * `first`: the upstream's bytes after its 101; `clientFirst`: the client's after its request.
   */
  relay(client: Duplex, upstream: Duplex, first: Buffer, clientFirst: Buffer): Promise<RelayEnd>
  terminate(message: string, reason: string): void
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
  async begin(ctx: RequestContext, kind: SessionKind, responseHead: string): Promise<LiveSession> {
    const dialect = dialectOf(responseHead)
    if ('unknown' in dialect)
      throw new GatewayError(
        'GW_SESSION_UNSUPPORTED',
        `Gatehouse cannot record this session: ${dialect.unknown}`,
      )
    const limits = this.#limits(ctx)
    const exec = execParameters(new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? ''))
    const record = this.#newRecord(ctx, kind, {
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
      kind === 'portforward' ? undefined : this.#masking?.forDecision(ctx.decision)
    const session = new StreamSession({
      record,
      limits,
      dialect,
      query: new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? ''),
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
  async beginLog(ctx: RequestContext): Promise<LogSession> {
    const query = new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? '')
    const limits = this.#limits(ctx)
    const record = this.#newRecord(ctx, 'log', {
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

  #limits(ctx: RequestContext): SessionLimits {
    return sessionLimits(
      this.#defaults,
      ctx.decision?.obligations.session,
      this.#masking?.forRecords,
    )
  }

  /** A new session record, state live, from the request and what the caller says of it. */
  #newRecord(
    ctx: RequestContext,
    kind: SessionRecord['kind'],
    what: Pick<SessionRecord, 'container' | 'command' | 'tty' | 'stdin' | 'protocol'> & {
      stdinRecorded: boolean
    },
  ): SessionRecord {
    const audit = buildAuditRecord(ctx, undefined, { maxBodyBytes: 0 })
    const startedAt = new Date()
    const info = ctx.requestInfo!
    const { stdinRecorded, ...fields } = what
    return {
      id: ctx.id,
      kind,
      state: 'live',
      startedAt: startedAt.toISOString(),
      replica: this.replica,
      cluster: ctx.cluster!.name,
      identity: audit.identity,
      principal: audit.principal,
      source: audit.source,
      namespace: info.namespace,
      pod: info.name,
      ...fields,
      decision: ctx.decision
        ? {
            ...(ctx.decision.policy ? { policy: ctx.decision.policy } : {}),
            rule: ctx.decision.rule,
          }
        : null,
      bytes: { clientToUpstream: 0, upstreamToClient: 0 },
      recording: {
        key: recordingKey(ctx.id, startedAt),
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
