// The sessions' table and its SQL, and the kill broadcast: a session record is written when the
// session starts and again when it ends, and an administrator's kill reaches the replica that
// relays the session through the database's change notifications.
import { filterClause, type Database, type Migration } from '../store/index.ts'
import { sessionQuerySchema, type SessionQuery, type SessionRecord } from './record.ts'

/** Version 2 of the one migration history (src/stores.ts lists every domain's). */
export const SESSION_MIGRATIONS: readonly Migration[] = [
  {
    version: 2,
    description: 'sessions (exec, attach, port-forward, followed logs)',
    statements: [
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT,
        identity TEXT,
        cluster TEXT,
        namespace TEXT,
        pod TEXT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        replica TEXT NOT NULL,
        record TEXT NOT NULL
      )`,
      'CREATE INDEX sessions_start ON sessions (start_ms)',
      'CREATE INDEX sessions_state_replica ON sessions (state, replica)',
      'CREATE INDEX sessions_identity_start ON sessions (identity, start_ms)',
    ],
  },
]

export interface SessionRepository {
  /**
   * Other replicas relay sessions recorded here too (a shared database): a session live in the
   * table but not in this process may be live elsewhere, and a kill is broadcast to reach it.
   */
  readonly shared: boolean
  /** Inserts or replaces a session record (written when a session starts and when it ends). */
  saveSession(session: SessionRecord): Promise<void>
  getSession(id: string): Promise<SessionRecord | undefined>
  /** Newest first. */
  querySessions(q: SessionQuery): Promise<SessionRecord[]>
  /** Removes ended sessions that started before `timeMs`; returns how many. */
  deleteBefore(timeMs: number): Promise<number>
  /** Asks every replica to end a live session; the one relaying it does. */
  broadcastSessionKill(id: string, by: string): Promise<void>
  /** Calls `handler` for every kill broadcast; resolves to the unsubscribe. */
  onSessionKill(handler: (id: string, by: string) => void): Promise<() => Promise<void>>
}

/** The notification channel of kills (PostgreSQL: `gatehouse_session_kill_<schema>`). */
const KILL_CHANNEL = 'session_kill'

const COLUMNS = [
  'id',
  'start_ms',
  'end_ms',
  'identity',
  'cluster',
  'namespace',
  'pod',
  'kind',
  'state',
  'replica',
  'record',
] as const

function sessionRow(s: SessionRecord): unknown[] {
  return [
    s.id,
    Date.parse(s.startedAt),
    s.endedAt ? Date.parse(s.endedAt) : null,
    s.identity?.name ?? null,
    s.cluster,
    s.namespace,
    s.pod,
    s.kind,
    s.state,
    s.replica,
    JSON.stringify(s),
  ]
}

export function sessionRepository(db: Database): SessionRepository {
  const ph = (i: number): string => db.placeholder(i)
  const parse = (r: { record: string }): SessionRecord => JSON.parse(r.record) as SessionRecord
  // Portable upsert (SQLite >= 3.24 and PostgreSQL).
  const upsert = `INSERT INTO sessions (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => ph(i)).join(', ')})
    ON CONFLICT (id) DO UPDATE SET end_ms = excluded.end_ms, state = excluded.state, record = excluded.record`
  return {
    shared: db.shared,
    async saveSession(session) {
      await db.write(upsert, sessionRow(session))
    },
    async getSession(id) {
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM sessions WHERE id = ${ph(0)}`,
        [id],
      )
      return rows[0] ? parse(rows[0]) : undefined
    },
    async querySessions(input) {
      const q = sessionQuerySchema.parse(input)
      const { sql, params } = filterClause(
        q,
        ['cluster', 'namespace', 'pod', 'kind', 'state', 'replica'],
        'start_ms',
        ph,
      )
      const rows = await db.all<{ record: string }>(
        `SELECT record FROM sessions ${sql} ORDER BY start_ms DESC, id DESC LIMIT ${ph(params.length)}`,
        [...params, q.limit],
      )
      return rows.map(parse)
    },
    deleteBefore(timeMs) {
      return db.write(`DELETE FROM sessions WHERE start_ms < ${ph(0)} AND state != ${ph(1)}`, [
        timeMs,
        'live',
      ])
    },
    async broadcastSessionKill(id, by) {
      await db.notify(KILL_CHANNEL, JSON.stringify({ id, by }))
    },
    onSessionKill(handler) {
      return db.listen(KILL_CHANNEL, (payload) => {
        const { id, by } = JSON.parse(payload) as { id?: unknown; by?: unknown }
        if (typeof id === 'string' && typeof by === 'string') handler(id, by)
      })
    },
  }
}
