// A recorded `pods/log` response (also `follow=true`): the body of a 200 answer as one stdout
// text stream. The forward stage feeds it chunks as it relays them and ends it with the status.
import type { Logger } from '../observability/logger.ts'
import type { SessionLimits } from './limits.ts'
import { AsciicastWriter, type RecordingStore } from './recording.ts'
import type { SessionRepository } from './repository.ts'
import type { SessionRecord } from './record.ts'
import { MaskedStreams } from './masked-streams.ts'

export interface LogSession {
  readonly record: SessionRecord
  chunk(data: Buffer): void
  /** Called when a limit or a kill ends the stream (the forward stage aborts the response). */
  onTerminate(fn: () => void): void
  /** status 0: no answer from the API server. */
  end(status: number, bytes: number, reason?: string): Promise<void>
}

export class RecordedLog implements LogSession {
  readonly record: SessionRecord
  readonly #limits: SessionLimits
  readonly #store: SessionRepository
  readonly #logger: Logger
  readonly #writer: AsciicastWriter
  readonly #streams: MaskedStreams
  readonly #start = performance.now()
  readonly #onEnd: () => void
  #abort: (() => void) | undefined
  /** Why the stream was cut short, or why the recording stopped. */
  #limited: string | undefined
  #resolveEnded!: () => void
  readonly ended = new Promise<void>((r) => (this.#resolveEnded = r))

  constructor(opts: {
    record: SessionRecord
    limits: SessionLimits
    store: SessionRepository
    recordings: RecordingStore
    logger: Logger
    /** The request's query, kept in the recording's header. */
    query: string
    onEnd: () => void
  }) {
    const r = (this.record = opts.record)
    this.#limits = opts.limits
    this.#store = opts.store
    this.#logger = opts.logger
    this.#onEnd = opts.onEnd
    this.#writer = new AsciicastWriter(
      opts.recordings.create(r.recording!.key),
      {
        width: 80,
        height: 24,
        timestamp: Math.floor(Date.parse(r.startedAt) / 1000),
        title: `logs ${r.namespace}/${r.pod}${r.container ? ` (${r.container})` : ''}`,
        gatehouse: {
          session: r.id,
          kind: 'log',
          identity: r.identity?.name,
          cluster: r.cluster,
          namespace: r.namespace,
          pod: r.pod,
          container: r.container,
          query: opts.query,
        },
      },
      {
        start: this.#start,
        maxBytes: opts.limits.maxRecordingBytes,
        onLimit: () => {
          if (this.#limited) return
          this.#limited = `recording limit of ${opts.limits.maxRecordingBytes} bytes reached`
          this.#writer.stop(this.#limited)
          if (opts.limits.onRecordingLimit === 'terminate') this.#abort?.()
        },
      },
    )
    this.#streams = new MaskedStreams(this.#writer, {
      mask: opts.limits.maskRecordings,
      masking: opts.limits.recordMasking,
    })
  }

  snapshot(): SessionRecord {
    return { ...this.record, recording: { ...this.record.recording!, bytes: this.#writer.bytes } }
  }

  terminate(_message: string, reason: string): void {
    this.#limited ??= reason
    this.#writer.stop(reason)
    this.#abort?.()
  }

  chunk(data: Buffer): void {
    this.#streams.write('o', data)
  }

  onTerminate(fn: () => void): void {
    this.#abort = fn
  }

  async end(status: number, bytes: number, reason?: string): Promise<void> {
    this.#onEnd()
    this.#resolveEnded()
    // a log that ended as the API server sent it lets held text out as whole-text masking would;
    // one cut short (a kill, a limit, a failure) masks a value under way as it stands
    if (status === 200 && reason === undefined && this.#limited === undefined)
      this.#streams.flushAll()
    this.#streams.end()
    await this.#writer.close().catch(() => undefined)
    const limited = this.#limited
    // a recording limit with stopRecording lets the stream go on: only the recording stopped
    const endedEarly =
      limited !== undefined &&
      (this.#limits.onRecordingLimit === 'terminate' || !limited.startsWith('recording limit'))
    const final: SessionRecord = {
      ...this.record,
      state: endedEarly ? 'terminated' : 'complete',
      endedAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - this.#start),
      bytes: { clientToUpstream: 0, upstreamToClient: bytes },
      recording: {
        ...this.record.recording!,
        bytes: this.#writer.bytes,
        ...(this.#limits.maskRecordings ? { masked: this.#streams.masked } : {}),
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
    Object.assign(this.record, final)
    await this.#store
      .saveSession(final)
      .catch((e: unknown) =>
        this.#logger.error(
          { session: this.record.id, error: String(e) },
          'session record could not be saved',
        ),
      )
  }
}
