// A recorded exec, attach or port-forward: relays the upgraded connection through the tap,
// writes the recording as events arrive, enforces the policy's limits, and saves the final
// session record when the relay closes. With a client masking profile, exec and attach output
// reaches the client masked (client-masking.ts).
import type { Duplex } from 'node:stream'
import type { Logger } from '../observability/logger.ts'
import type { LiveSession, SessionLimits } from './limits.ts'
import { AsciicastWriter, type RecordingStore } from './recording.ts'
import type { SessionRepository } from './repository.ts'
import type { PortActivity, SessionRecord } from './record.ts'
import type { Dialect, SessionKind } from '../kube/remote-command.ts'
import { relaySession, type RelayEnd, type SessionRelay } from './relay.ts'
import { createTap, type SessionObserver } from './tap.ts'
import { MaskedStreams, type TextMasking } from './masked-streams.ts'
import { maskText } from '../masking/text.ts'
import { createClientRewriter, type ClientRewriter } from './client-masking.ts'

export class StreamSession implements LiveSession {
  readonly record: SessionRecord
  readonly #limits: SessionLimits
  readonly #dialect: Dialect
  readonly #query: URLSearchParams
  readonly #clientMasking: TextMasking | undefined
  readonly #store: SessionRepository
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
    /** The request's query (port-forward: which ports). */
    query: URLSearchParams
    /** The caller's masking of exec and attach output; absent: the client gets it unmasked. */
    clientMasking?: TextMasking
    store: SessionRepository
    recordings: RecordingStore
    logger: Logger
    onEnd: () => void
  }) {
    this.record = opts.record
    this.#limits = opts.limits
    this.#dialect = opts.dialect
    this.#query = opts.query
    this.#clientMasking = opts.clientMasking
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

  async relay(
    client: Duplex,
    upstream: Duplex,
    first: Buffer,
    clientFirst: Buffer,
  ): Promise<RelayEnd> {
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
    const streams = new MaskedStreams(writer, {
      mask: this.#limits.maskRecordings,
      masking: this.#limits.recordMasking,
    })
    const kind = r.kind as SessionKind
    const tap = createTap(this.#dialect, kind, this.#observer(writer, streams), this.#query)
    const clientMasking = kind === 'portforward' ? undefined : this.#clientMasking
    const masker: { rewriter?: ClientRewriter | undefined } = {}
    const relay = relaySession({
      client,
      upstream,
      first,
      clientFirst,
      tap,
      onActivity: () => (this.#lastActivity = performance.now()),
      recorder: writer,
      ...(clientMasking
        ? {
            rewriter: (send: (b: Buffer) => void, onError: (e: unknown) => void) =>
              (masker.rewriter = createClientRewriter({
                dialect: this.#dialect,
                streamTypes: tap.streamTypes,
                masking: clientMasking,
                send,
                onError,
              })),
          }
        : {}),
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
    streams.end()
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
      ...(masker.rewriter ? { maskedForClient: masker.rewriter.masked } : {}),
      recording: {
        ...r.recording!,
        bytes: writer.bytes,
        ...(this.#limits.maskRecordings ? { masked: streams.masked } : {}),
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

  #observer(w: AsciicastWriter, streams: MaskedStreams): SessionObserver {
    const r = this.record
    const mask = this.#limits.maskRecordings
    const how = this.#limits.recordMasking ?? {}
    const masked = (s: string): string => (mask ? maskText(s, how).text : s)
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
        if (stdin) streams.write('i', d)
      },
      stdout: (d) => streams.write('o', d),
      stderr: (d) => streams.write('e', d),
      resize: (s) => w.resize(s.width, s.height),
      stdinClosed: () => undefined,
      exit: (code, message) => {
        r.exitCode = code
        if (message) r.exitMessage = masked(message)
        streams.flushAll()
        w.exit(message ? masked(message) : String(code))
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
            const kept = mask ? Buffer.from(masked(part.toString('latin1')), 'latin1') : part
            w.note(direction === 'in' ? 'pi' : 'po', kept.toString('base64'))
          }
        }
      },
      portError: (connection, p, message) => {
        port(p).errors++
        w.note('c', { connection, port: p, event: 'error', message: masked(message) })
      },
      portClosed: (connection, p) => w.note('c', { connection, port: p, event: 'close' }),
    }
  }
}
