// `gatehouse sessions list|show|replay|kill`: sessions from the store named by gatehouse.yaml,
// recordings from its recording store; kill goes through the admin API of the running replica.
import { cut, formatColumns } from './table.ts'
import { adminRequest } from './admin-request.ts'
import { withStore } from './audit.ts'
import { sessionQueryFromParams } from '../admin/server.ts'
import type { GatewayConfig } from '../config/index.ts'
import { replay, transcript } from '../sessions/replay.ts'
import { fail, type Command, type Values } from './command.ts'
import {
  adminUrlOf,
  CONFIG_OPTION,
  configOf,
  LIST_OPTIONS,
  listFilters,
  printJson,
  printList,
  TOKEN_OPTIONS,
  tokenFrom,
} from './common.ts'
import { forTerminal } from './terminal.ts'
import {
  readRecording,
  recordingStoreFromConfig,
  type AsciicastEvent,
} from '../sessions/recording.ts'
import type { SessionQuery, SessionRecord } from '../sessions/record.ts'

export function listSessions(config: GatewayConfig, q: SessionQuery): Promise<SessionRecord[]> {
  return withStore(config, (s) => s.sessions.querySessions(q))
}

export function getSession(config: GatewayConfig, id: string): Promise<SessionRecord | undefined> {
  return withStore(config, (s) => s.sessions.getSession(id))
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
    cut(what(s), 40),
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

async function oneSession(
  command: string,
  config: GatewayConfig,
  id: string,
): Promise<SessionRecord> {
  return (await getSession(config, id)) ?? fail(`${command}: no session ${id}`)
}

function replayOptions(values: Values): { speed: number; maxIdleSeconds?: number } {
  const speed = values['dump'] ? Infinity : Number(values['speed'] ?? '1')
  if (!(speed > 0))
    fail(
      `gatehouse sessions replay: --speed ${String(values['speed'])}: expected a number above 0`,
      2,
    )
  const raw = values['max-idle']
  const maxIdle = raw === undefined ? undefined : Number(raw)
  if (maxIdle !== undefined && !(maxIdle >= 0))
    fail(`gatehouse sessions replay: --max-idle ${String(raw)}: expected seconds`, 2)
  return { speed, ...(maxIdle === undefined ? {} : { maxIdleSeconds: maxIdle }) }
}

const SESSION_FILTERS = ['identity', 'cluster', 'namespace', 'pod', 'kind', 'state'] as const

export const sessionCommands: Command[] = [
  {
    name: 'sessions list',
    summary: 'list exec, attach, port-forward and followed-log sessions, newest first',
    options: {
      ...LIST_OPTIONS,
      pod: { type: 'string', value: 'POD', help: 'the pod' },
      kind: { type: 'string', value: 'exec|attach|portforward|log', help: 'the kind of session' },
      state: { type: 'string', value: 'live|complete|terminated|incomplete', help: 'its state' },
    },
    examples: [
      'gatehouse sessions list -c gatehouse.yaml --since 1h --kind exec --namespace prod',
      'gatehouse sessions list -c gatehouse.yaml --state live -o jsonl',
    ],
    async run(values) {
      const q = listFilters(
        'gatehouse sessions list',
        values,
        SESSION_FILTERS,
        sessionQueryFromParams,
      )
      printList(values, await listSessions(configOf(values), q), formatSessions)
    },
  },
  {
    name: 'sessions show',
    summary: 'print one session record as JSON',
    options: { ...CONFIG_OPTION },
    examples: ['gatehouse sessions show -c gatehouse.yaml 0b6e1f1c-2d7a-4e8b-9c3d-5a4f6e7d8c9b'],
    positionals: { name: 'ID', min: 1, max: 1 },
    async run(values, [id]) {
      printJson(await oneSession('gatehouse sessions show', configOf(values), id!))
    },
  },
  {
    name: 'sessions replay',
    summary: 'play a recording: stdout and stderr as the client saw them',
    description:
      'At the original pace by default; --dump plays it at once, --events prints a timestamped\ntranscript of every event (stdin, resizes, exit) with its text escaped.',
    options: {
      ...CONFIG_OPTION,
      speed: { type: 'string', value: 'N', default: '1', help: 'play N times as fast' },
      'max-idle': { type: 'string', value: 'SECONDS', help: 'shorten longer pauses to this' },
      dump: { type: 'boolean', help: 'play everything at once' },
      events: { type: 'boolean', help: 'print a transcript of every event instead' },
    },
    examples: [
      'gatehouse sessions replay -c gatehouse.yaml 0b6e1f1c-2d7a-4e8b-9c3d-5a4f6e7d8c9b',
      'gatehouse sessions replay -c gatehouse.yaml 0b6e1f1c-2d7a-4e8b-9c3d-5a4f6e7d8c9b --speed 4 --max-idle 2',
      'gatehouse sessions replay -c gatehouse.yaml 0b6e1f1c-2d7a-4e8b-9c3d-5a4f6e7d8c9b --events',
    ],
    positionals: { name: 'ID', min: 1, max: 1 },
    async run(values, [id]) {
      const config = configOf(values)
      const s = await oneSession('gatehouse sessions replay', config, id!)
      const { events, truncated } = await loadRecording(config, s)
      if (values['events'])
        process.stdout.write(
          transcript(events)
            .split('\n')
            .map((l) => forTerminal(l))
            .join('\n'),
        )
      else await replay(events, process, replayOptions(values))
      if (truncated || s.state === 'incomplete')
        process.stderr.write(
          `\ngatehouse: the recording of session ${s.id} is incomplete (${forTerminal(s.endReason ?? 'truncated')})\n`,
        )
    },
  },
  {
    name: 'sessions kill',
    summary: 'end a live session through the admin API (as an admin identity)',
    options: { ...CONFIG_OPTION, ...TOKEN_OPTIONS },
    examples: [
      'gatehouse sessions kill -c gatehouse.yaml 0b6e1f1c-2d7a-4e8b-9c3d-5a4f6e7d8c9b --token-file admin.token',
    ],
    positionals: { name: 'ID', min: 1, max: 1 },
    async run(values, [id]) {
      const command = 'gatehouse sessions kill'
      const r = await killSession(
        configOf(values),
        id!,
        tokenFrom(command, values),
        adminUrlOf(values),
      )
      if (r.code !== 202) fail(`${command}: ${r.code}: ${r.body.trim()}`)
      process.stdout.write(`session ${forTerminal(id!)} killed\n`)
    },
  },
]
