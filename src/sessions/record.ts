// One session record per exec, attach, port-forward and followed log stream: who, into which
// pod, what ran, over which protocol, how it ended, and where its recording is. Its id is the
// request id of the upgrade (or log) request, so it joins that request's audit record and the
// cluster's audit log (Audit-ID).
import { z } from 'zod'
import type { AuditRecord } from '../audit/record.ts'

export type SessionState =
  /** running now (or the replica that ran it stopped without closing it: see `incomplete`) */
  | 'live'
  /** ended by the client or the container; the recording is whole */
  | 'complete'
  /** ended by Gatehouse: a policy limit, an admin, a protocol error, a shutdown */
  | 'terminated'
  /** the replica stopped mid-session (crash): the recording holds what was written until then */
  | 'incomplete'

export interface PortActivity {
  port: number
  connections: number
  bytesIn: number
  bytesOut: number
  errors: number
}

export interface SessionRecord {
  id: string
  kind: 'exec' | 'attach' | 'portforward' | 'log'
  state: SessionState
  /** ISO 8601 UTC */
  startedAt: string
  endedAt?: string
  durationMs?: number
  /** The Gatehouse replica that relayed it (host name and data directory). */
  replica: string
  cluster: string
  identity: AuditRecord['identity']
  principal: AuditRecord['principal']
  source: AuditRecord['source']
  namespace: string
  pod: string
  container: string
  command: string[]
  tty: boolean
  stdin: boolean
  protocol: { transport: string; subprotocol: string }
  decision: { policy?: string; rule: string } | null
  exitCode?: number
  exitMessage?: string
  bytes: { clientToUpstream: number; upstreamToClient: number }
  /**
   * exec and attach: values masked in the stdout and stderr the client received (present when
   * the caller's policy decision asked for masking; `recording.masked` counts the recording's).
   */
  maskedForClient?: number
  ports?: PortActivity[]
  recording?: {
    /** Where the recording store keeps it. */
    key: string
    format: 'asciicast-v2+gzip'
    /** Uncompressed event bytes written. */
    bytes: number
    stdinRecorded: boolean
    /** Values masked in the recording (secrets, keys, card numbers...), when masking is on. */
    masked?: number
    /** Recording stopped before the session ended (the size limit with onLimit: stopRecording). */
    stopped?: string
  }
  /** Why it ended: client closed, container exited, a limit, an admin kill, a protocol error. */
  endReason?: string
}

export const sessionQuerySchema = z.strictObject({
  identity: z.string().min(1).optional(),
  cluster: z.string().min(1).optional(),
  namespace: z.string().optional(),
  pod: z.string().min(1).optional(),
  kind: z.enum(['exec', 'attach', 'portforward', 'log']).optional(),
  state: z.enum(['live', 'complete', 'terminated', 'incomplete']).optional(),
  replica: z.string().min(1).optional(),
  sinceMs: z.number().int().optional(),
  untilMs: z.number().int().optional(),
  limit: z.number().int().min(1).max(10_000).default(100),
})

export type SessionQuery = z.input<typeof sessionQuerySchema>
