// Sessions: every exec, attach and port-forward that the API server upgrades is recorded,
// limited and killable. The manager saves a session record before the first byte is relayed
// (fail closed: a session Gatehouse cannot record does not start), relays through the tap,
// writes the recording as it goes, enforces the policy's limits, and saves the record again
// when the session ends, with how and why it ended.
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import { buildAuditRecord, type AuditStore } from '../audit/index.ts'
import type { SessionsConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../observability/logger.ts'
import type { RequestContext } from '../pipeline/context.ts'
import type { SessionObligations } from '../policy/index.ts'
import { AsciicastWriter, recordingKey, type RecordingStore } from './recording.ts'
import type { PortActivity, SessionRecord } from './record.ts'
import { dialectOf, execParameters, type Dialect, type SessionKind } from './remote-command.ts'
import { relaySession, type RelayEnd, type SessionRelay } from './relay.ts'
import { createTap, type SessionObserver } from './tap.ts'

/** The limits and recording settings of one session: the config defaults, then the policy's. */
export interface SessionLimits {
  maxDurationSeconds: number
  idleTimeoutSeconds: number
  maxRecordingBytes: number
  onRecordingLimit: 'terminate' | 'stopRecording'
  recordStdin: 'always' | 'nonInteractive' | 'never'
  portForwardCaptureBytes: number
}

export function sessionLimits(
  defaults: SessionsConfig,
  policy: SessionObligations | undefined,
): SessionLimits {
  return {
    maxDurationSeconds: policy?.maxDuration ?? defaults.maxDurationSeconds,
    idleTimeoutSeconds: policy?.idleTimeout ?? defaults.idleTimeoutSeconds,
    maxRecordingBytes: policy?.maxRecordingBytes ?? defaults.maxRecordingBytes,
    onRecordingLimit: policy?.onRecordingLimit ?? defaults.onRecordingLimit,
    recordStdin: policy?.recordStdin ?? defaults.recordStdin,
    portForwardCaptureBytes: policy?.portForwardCaptureBytes ?? defaults.portForwardCaptureBytes,
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

/** A recorded `pods/log` response (also `follow=true`): its body as one text stream. */
export interface LogSession {
  readonly record: SessionRecord
  chunk(data: Buffer): void
  /** Called when the recording limit ends the stream (the forward stage aborts the response). */
  onTerminate(fn: () => void): void
  /** status 0: no answer from the API server. */
  end(status: number, bytes: number, reason?: string): Promise<void>
}

export interface LiveSession {
  readonly record: SessionRecord
  /** Relays the upgraded connection; resolves once the session ended and its record is saved. */
  relay(client: Duplex, upstream: Duplex, first: Buffer): Promise<RelayEnd>
  terminate(message: string, reason: string): void
}

/** What the manager keeps of a live session: enough to list it, end it, and wait for it. */
interface LiveEntry {
  snapshot(): SessionRecord
  terminate(message: string, reason: string): void
  readonly ended: Promise<void>
}

export class SessionManager {
  readonly #store: AuditStore
  readonly #recordings: RecordingStore
  readonly #defaults: SessionsConfig
  readonly #logger: Logger
  readonly replica: string
  readonly #live = new Map<string, LiveEntry>()
  #stopListening: (() => Promise<void>) | undefined

  constructor(opts: {
    store: AuditStore
    recordings: RecordingStore
    defaults: SessionsConfig
    logger: Logger
    replica: string
  }) {
    this.#store = opts.store
    this.#recordings = opts.recordings
    this.#defaults = opts.defaults
    this.#logger = opts.logger
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

  /** Listens for kills sent to every replica (shared stores); call once at start. */
  async listenForKills(): Promise<void> {
    if (!this.#store.onSessionKill) return
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
    if (!this.#store.broadcastSessionKill) return { error: 'elsewhere', session: s }
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
    const limits = sessionLimits(this.#defaults, ctx.decision?.obligations.session)
    const audit = buildAuditRecord(ctx, undefined, { maxBodyBytes: 0 })
    const query = new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? '')
    const exec = execParameters(query)
    const startedAt = new Date()
    const info = ctx.requestInfo!
    const record: SessionRecord = {
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
      container: exec.container,
      command: kind === 'exec' ? exec.command : [],
      tty: exec.tty,
      stdin: exec.stdin,
      protocol: { transport: dialect.transport, subprotocol: dialect.subprotocol },
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
        stdinRecorded:
          limits.recordStdin === 'always' || (limits.recordStdin === 'nonInteractive' && !exec.tty),
      },
    }
    try {
      await this.#store.saveSession(record)
    } catch (e) {
      throw new GatewayError(
        'GW_AUDIT_UNAVAILABLE',
        'Gatehouse cannot record sessions right now (its audit store is failing); the session was not started',
        { cause: e, detail: String(e) },
      )
    }
    const session = new Session({
      record,
      limits,
      dialect,
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
    this.#logger.debug(
      {
        session: record.id,
        clientUpgrade: ctx.req.headers.upgrade,
        clientProtocols: ctx.req.headers['sec-websocket-protocol'],
        head: responseHead,
      },
      'session upgrade response',
    )
    return session
  }

  /** Starts recording a pod's log stream; saved before the request goes upstream (fail closed). */
  async beginLog(ctx: RequestContext): Promise<LogSession> {
    const limits = sessionLimits(this.#defaults, ctx.decision?.obligations.session)
    const audit = buildAuditRecord(ctx, undefined, { maxBodyBytes: 0 })
    const query = new URLSearchParams(ctx.upstreamPath?.split('?')[1] ?? '')
    const info = ctx.requestInfo!
    const startedAt = new Date()
    const start = performance.now()
    const record: SessionRecord = {
      id: ctx.id,
      kind: 'log',
      state: 'live',
      startedAt: startedAt.toISOString(),
      replica: this.replica,
      cluster: ctx.cluster!.name,
      identity: audit.identity,
      principal: audit.principal,
      source: audit.source,
      namespace: info.namespace,
      pod: info.name,
      container: query.get('container') ?? '',
      command: [],
      tty: false,
      stdin: false,
      protocol: {
        transport: 'http',
        subprotocol: query.get('follow') === 'true' ? 'log follow' : 'log',
      },
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
        stdinRecorded: false,
      },
    }
    try {
      await this.#store.saveSession(record)
    } catch (e) {
      throw new GatewayError(
        'GW_AUDIT_UNAVAILABLE',
        'Gatehouse cannot record log streams right now (its audit store is failing)',
        { cause: e, detail: String(e) },
      )
    }
    let terminate: (() => void) | undefined
    let limited: string | undefined
    const writer = new AsciicastWriter(
      this.#recordings.create(record.recording!.key),
      {
        width: 80,
        height: 24,
        timestamp: Math.floor(startedAt.getTime() / 1000),
        title: `logs ${record.namespace}/${record.pod}${record.container ? ` (${record.container})` : ''}`,
        gatehouse: {
          session: record.id,
          kind: 'log',
          identity: record.identity?.name,
          cluster: record.cluster,
          namespace: record.namespace,
          pod: record.pod,
          container: record.container,
          query: ctx.upstreamPath?.split('?')[1] ?? '',
        },
      },
      {
        start,
        maxBytes: limits.maxRecordingBytes,
        onLimit: () => {
          if (limited) return
          limited = `recording limit of ${limits.maxRecordingBytes} bytes reached`
          writer.stop(limited)
          if (limits.onRecordingLimit === 'terminate') terminate?.()
        },
      },
    )
    let resolveEnded!: () => void
    this.#live.set(record.id, {
      snapshot: () => ({ ...record, recording: { ...record.recording!, bytes: writer.bytes } }),
      terminate: (_message, reason) => {
        limited ??= reason
        writer.stop(reason)
        terminate?.()
      },
      ended: new Promise<void>((r) => (resolveEnded = r)),
    })
    const store = this.#store
    const logger = this.#logger
    const live = this.#live
    return {
      record,
      chunk(data) {
        writer.text('o', data)
      },
      onTerminate(fn) {
        terminate = fn
      },
      async end(status, bytes, reason) {
        live.delete(record.id)
        resolveEnded()
        await writer.close().catch(() => undefined)
        const endedEarly =
          limited !== undefined &&
          (limits.onRecordingLimit === 'terminate' || !limited.startsWith('recording limit'))
        const final: SessionRecord = {
          ...record,
          state: endedEarly ? 'terminated' : 'complete',
          endedAt: new Date().toISOString(),
          durationMs: Math.round(performance.now() - start),
          bytes: { clientToUpstream: 0, upstreamToClient: bytes },
          recording: {
            ...record.recording!,
            bytes: writer.bytes,
            ...(limited && !endedEarly ? { stopped: limited } : {}),
          },
          endReason:
            reason ??
            (endedEarly && limited
              ? limited
              : status === 200
                ? 'the log stream ended'
                : `the API server answered ${status}`),
        }
        Object.assign(record, final)
        await store
          .saveSession(final)
          .catch((e: unknown) =>
            logger.error(
              { session: record.id, error: String(e) },
              'session record could not be saved',
            ),
          )
      },
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

class Session implements LiveSession, LiveEntry {
  readonly record: SessionRecord
  readonly #limits: SessionLimits
  readonly #dialect: Dialect
  readonly #store: AuditStore
  readonly #recordings: RecordingStore
  readonly #logger: Logger
  readonly #onEnd: () => void
  readonly #start = performance.now()
  #writer: AsciicastWriter | undefined
  #relay: SessionRelay | undefined
  #relayClosed = false
  #terminated: { message: string; reason: string } | undefined
  #timers: NodeJS.Timeout[] = []
  #idle: NodeJS.Timeout | undefined
  #lastActivity = performance.now()
  readonly #ports = new Map<number, PortActivity>()
  readonly #captured = new Map<string, { in: number; out: number }>()
  #resolveEnded!: () => void
  readonly ended = new Promise<void>((r) => (this.#resolveEnded = r))

  constructor(opts: {
    record: SessionRecord
    limits: SessionLimits
    dialect: Dialect
    store: AuditStore
    recordings: RecordingStore
    logger: Logger
    onEnd: () => void
  }) {
    this.record = opts.record
    this.#limits = opts.limits
    this.#dialect = opts.dialect
    this.#store = opts.store
    this.#recordings = opts.recordings
    this.#logger = opts.logger
    this.#onEnd = opts.onEnd
  }

  snapshot(): SessionRecord {
    return {
      ...this.record,
      recording: { ...this.record.recording!, bytes: this.#writer?.bytes ?? 0 },
    }
  }

  terminate(message: string, reason: string): void {
    // once the relay closed, the session is over: a late kill or shutdown changes nothing
    if (this.#terminated || this.#relayClosed) return
    this.#terminated = { message, reason }
    this.#writer?.stop(reason)
    if (this.#relay) this.#relay.terminate(message, reason)
  }

  async relay(client: Duplex, upstream: Duplex, first: Buffer): Promise<RelayEnd> {
    const r = this.record
    const sink = this.#recordings.create(r.recording!.key)
    const writer = new AsciicastWriter(
      sink,
      {
        width: 80,
        height: 24,
        timestamp: Math.floor(Date.parse(r.startedAt) / 1000),
        ...(r.command.length ? { command: r.command.join(' ') } : {}),
        title: `${r.kind} ${r.namespace}/${r.pod}${r.container ? ` (${r.container})` : ''}`,
        gatehouse: {
          session: r.id,
          kind: r.kind,
          identity: r.identity?.name,
          cluster: r.cluster,
          namespace: r.namespace,
          pod: r.pod,
          container: r.container,
          command: r.command,
          tty: r.tty,
          stdin: r.stdin,
          protocol: r.protocol,
          stdinRecorded: r.recording!.stdinRecorded,
        },
      },
      {
        start: this.#start,
        maxBytes: this.#limits.maxRecordingBytes,
        onLimit: () => this.#recordingLimit(),
      },
    )
    this.#writer = writer
    const tap = createTap(this.#dialect, r.kind as SessionKind, this.#observer(writer))
    const relay = relaySession({
      client,
      upstream,
      first,
      tap,
      onActivity: () => (this.#lastActivity = performance.now()),
      recorder: writer,
    })
    this.#relay = relay
    this.#armLimits()
    if (this.#terminated) relay.terminate(this.#terminated.message, this.#terminated.reason)
    const end = await relay.closed
    this.#relayClosed = true
    for (const t of this.#timers) clearTimeout(t)
    clearTimeout(this.#idle)
    let tapError: string | undefined
    await tap
      .settled()
      .catch((e: unknown) => (tapError = e instanceof Error ? e.message : String(e)))
    tap.close()
    const protocolError =
      end.protocolError ?? (tapError ? `malformed frame: ${tapError}` : undefined)
    if (protocolError) writer.stop(protocolError)
    await writer
      .close()
      .catch((e: unknown) =>
        this.#logger.error(
          { session: r.id, error: String(e) },
          'session recording could not be closed',
        ),
      )
    const endedAt = new Date()
    const final: SessionRecord = {
      ...r,
      state: this.#terminated || protocolError ? 'terminated' : 'complete',
      endedAt: endedAt.toISOString(),
      durationMs: Math.round(performance.now() - this.#start),
      bytes: { clientToUpstream: end.clientToUpstream, upstreamToClient: end.upstreamToClient },
      ...(this.#ports.size ? { ports: [...this.#ports.values()] } : {}),
      recording: {
        ...r.recording!,
        bytes: writer.bytes,
        ...(writer.stopped && !this.#terminated && !protocolError
          ? { stopped: writer.stopped }
          : {}),
      },
      endReason:
        protocolError ??
        this.#terminated?.reason ??
        (end.endedBy === 'client' ? 'the client closed the session' : 'the session ended upstream'),
    }
    Object.assign(this.record, final)
    try {
      await this.#store.saveSession(final)
    } catch (e) {
      // The record stays 'live' in the store and becomes 'incomplete' at the next start.
      this.#logger.error({ session: r.id, error: String(e) }, 'session record could not be saved')
    }
    this.#onEnd()
    this.#resolveEnded()
    return end
  }

  #recordingLimit(): void {
    const limit = this.#limits.maxRecordingBytes
    if (this.#limits.onRecordingLimit === 'stopRecording') {
      this.#writer?.stop(
        `recording limit of ${limit} bytes reached; the session went on unrecorded`,
      )
      return
    }
    this.terminate(
      `session terminated by Gatehouse: its recording reached the limit of ${limit} bytes`,
      `recording limit of ${limit} bytes reached`,
    )
  }

  #armLimits(): void {
    const { maxDurationSeconds, idleTimeoutSeconds } = this.#limits
    if (maxDurationSeconds > 0)
      this.#timers.push(
        setTimeout(
          () =>
            this.terminate(
              `session terminated by Gatehouse: it reached its maximum duration of ${maxDurationSeconds}s`,
              `maximum duration of ${maxDurationSeconds}s reached`,
            ),
          maxDurationSeconds * 1000,
        ).unref(),
      )
    if (idleTimeoutSeconds > 0) {
      const check = (): void => {
        const idleMs = performance.now() - this.#lastActivity
        if (idleMs >= idleTimeoutSeconds * 1000)
          this.terminate(
            `session terminated by Gatehouse: idle for ${idleTimeoutSeconds}s`,
            `idle for ${idleTimeoutSeconds}s`,
          )
        else this.#idle = setTimeout(check, idleTimeoutSeconds * 1000 - idleMs).unref()
      }
      this.#idle = setTimeout(check, idleTimeoutSeconds * 1000).unref()
    }
  }

  #observer(w: AsciicastWriter): SessionObserver {
    const r = this.record
    const stdin = r.recording!.stdinRecorded
    const capture = this.#limits.portForwardCaptureBytes
    const port = (p: number): PortActivity => {
      let a = this.#ports.get(p)
      if (!a)
        this.#ports.set(p, (a = { port: p, connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 }))
      return a
    }
    return {
      stdin: (d) => {
        if (stdin) w.text('i', d)
      },
      stdout: (d) => w.text('o', d),
      stderr: (d) => w.text('e', d),
      resize: (s) => w.resize(s.width, s.height),
      stdinClosed: () => undefined,
      exit: (code, message) => {
        r.exitCode = code
        if (message) r.exitMessage = message
        w.exit(message ?? String(code))
      },
      portOpened: (connection, p) => {
        port(p).connections++
        w.note('c', { connection, port: p, event: 'open' })
      },
      portData: (connection, p, direction, data) => {
        const a = port(p)
        if (direction === 'in') a.bytesIn += data.length
        else a.bytesOut += data.length
        if (capture > 0) {
          const key = `${connection}:${p}`
          const c = this.#captured.get(key) ?? { in: 0, out: 0 }
          this.#captured.set(key, c)
          const room = capture - c[direction]
          if (room > 0) {
            const part = data.subarray(0, room)
            c[direction] += part.length
            w.note(direction === 'in' ? 'pi' : 'po', part.toString('base64'))
          }
        }
      },
      portError: (connection, p, message) => {
        port(p).errors++
        w.note('c', { connection, port: p, event: 'error', message })
      },
      portClosed: (connection, p) => w.note('c', { connection, port: p, event: 'close' }),
    }
  }
}
