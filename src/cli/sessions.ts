// `gatehouse sessions list|show|replay|kill`: sessions from the store named by gatehouse.yaml,
// recordings from its recording store; kill goes through the admin API of the running replica.
import { formatColumns } from './table.ts'
import { adminRequest } from './admin-request.ts'
import { withStore } from './audit.ts'
import type { GatewayConfig } from '../config/index.ts'
import {
  readRecording,
  recordingStoreFromConfig,
  type AsciicastEvent,
} from '../sessions/recording.ts'
import type { SessionQuery, SessionRecord } from '../sessions/record.ts'

export function listSessions(config: GatewayConfig, q: SessionQuery): Promise<SessionRecord[]> {
  return withStore(config, (s) => s.querySessions(q))
}

export function getSession(config: GatewayConfig, id: string): Promise<SessionRecord | undefined> {
  return withStore(config, (s) => s.getSession(id))
}

export async function loadRecording(
  config: GatewayConfig,
  session: SessionRecord,
): Promise<{ events: AsciicastEvent[]; truncated: boolean }> {
  if (!session.recording) throw new Error(`session ${session.id} has no recording`)
  const stream = recordingStoreFromConfig(config).open(session.recording.key)
  const opened = new Promise<void>((res, rej) => {
    stream.once('open', () => res())
    stream.once('error', (e) =>
      rej(new Error(`the recording of session ${session.id} cannot be read: ${e.message}`)),
    )
  })
  await opened
  const r = await readRecording(stream)
  return { events: r.events, truncated: r.truncated }
}

function what(s: SessionRecord): string {
  if (s.kind === 'portforward') return (s.ports ?? []).map((p) => `:${p.port}`).join(',') || '-'
  return s.command.join(' ') || (s.kind === 'attach' ? '(attach)' : '-')
}

export function formatSessions(sessions: readonly SessionRecord[]): string {
  const rows = sessions.map((s) => [
    s.startedAt,
    s.identity?.name ?? '-',
    s.kind,
    `${s.namespace}/${s.pod}${s.container ? `:${s.container}` : ''}`,
    what(s).slice(0, 40),
    s.tty ? 'tty' : '-',
    s.state,
    s.exitCode === undefined ? '-' : String(s.exitCode),
    s.durationMs === undefined ? '-' : `${(s.durationMs / 1000).toFixed(1)}s`,
    s.id,
  ])
  const header = [
    'STARTED',
    'IDENTITY',
    'KIND',
    'POD',
    'COMMAND',
    'TTY',
    'STATE',
    'EXIT',
    'DURATION',
    'ID',
  ]
  return formatColumns(header, rows)
}

/** POST /api/v1/sessions/<id>/kill on this configuration's admin listener. */
export function killSession(
  config: GatewayConfig,
  id: string,
  token: string,
  opts: { url?: string; caFile?: string } = {},
): Promise<{ code: number; body: string }> {
  return adminRequest(
    config,
    'POST',
    `/api/v1/sessions/${encodeURIComponent(id)}/kill`,
    token,
    opts,
  )
}
