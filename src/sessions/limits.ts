// The limits and recording settings of one session (the config defaults, then the policy's),
// and what a live session offers the manager.
import type { Duplex } from 'node:stream'
import type { SessionsConfig } from '../config/index.ts'
import type { SessionObligations } from '../policy/index.ts'
import type { TextMasking } from './masked-streams.ts'
import type { SessionRecord } from './record.ts'
import type { RelayEnd } from './relay.ts'

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

export interface LiveSession {
  readonly record: SessionRecord
  /**
   * Relays the upgraded connection; resolves once the session ended and its record is saved.
   * `first`: the upstream's bytes after its 101; `clientFirst`: the client's after its request.
   */
  relay(client: Duplex, upstream: Duplex, first: Buffer, clientFirst: Buffer): Promise<RelayEnd>
  terminate(message: string, reason: string): void
}
