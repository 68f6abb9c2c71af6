// The database every domain keeps its tables in: one contract, two implementations (SQLite in
// the data directory, zero setup; PostgreSQL, shared by several replicas). A domain's repository
// writes its own SQL against it; the database binds every parameter storable (storable.ts),
// renders placeholders for its dialect, applies the migrations it is handed, and carries change
// notifications between replicas. It knows no domain: which repositories share one database
// is decided where Gatehouse is wired together (src/stores.ts).
import type { Migration } from './migrations.ts'

export type Dialect = 'sqlite' | 'postgres'

/** Runs one statement at a time. Every string parameter is made storable before binding. */
export interface SqlRunner {
  readonly dialect: Dialect
  /** The i-th (0-based) parameter: `?` (SQLite) or `$1` (PostgreSQL). */
  placeholder(i: number): string
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>
  /**
   * A write whose result the next read sees at once (a compare-and-set): SQLite runs it on the
   * calling connection, synchronously. Resolves to the number of rows changed.
   */
  run(sql: string, params?: readonly unknown[]): Promise<number>
}

/** A table rows are inserted into in batches: its name, its columns in row order, its key. */
export interface BatchTable {
  readonly name: string
  /** Column name and portable type, in the order of a row's values. */
  readonly columns: readonly (readonly [name: string, type: 'TEXT' | 'BIGINT' | 'INTEGER'])[]
  /** The primary key column: a row whose key is already stored is skipped. */
  readonly key: string
}

/** A topic of change notifications ("a session was killed", "an approval changed"). */
export interface Notifications {
  /** Sends `payload` to every listener of `channel`, in this process and in every replica. */
  notify(channel: string, payload: string): Promise<void>
  /**
   * Calls `handler` with each payload sent on `channel` (by anyone, this process included);
   * resolves to the unsubscribe. Notifications sent while a shared database's listening
   * connection is down are lost: callers that must not miss one also poll.
   */
  listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>>
}

export interface Database extends SqlRunner, Notifications {
  /** A human-readable location (file path, or host/database/schema; never a password). */
  readonly location: string
  /**
   * Several Gatehouse processes may use it at once (PostgreSQL): what one replica notifies,
   * the others hear. False for SQLite, where one process relays everything.
   */
  readonly shared: boolean
  /**
   * A write that may wait its turn behind others: SQLite runs it on its writer thread, so a
   * slow disk never stalls the request path. Resolves to the number of rows changed.
   */
  write(sql: string, params?: readonly unknown[]): Promise<number>
  /**
   * Inserts `rows` in one transaction, skipping rows whose key is already stored (so a batch
   * retried after an ambiguous failure never duplicates); resolves to the rows inserted.
   * SQLite: on the writer thread; PostgreSQL: one statement whatever the batch's size.
   */
  insertBatch(table: BatchTable, rows: readonly (readonly unknown[])[]): Promise<number>
  /**
   * Applies the pending ones of `migrations` (ordered by version, composed where Gatehouse is
   * wired), each version once and in the same transaction as its row in
   * `gatehouse_schema_migrations`. Idempotent; safe when several replicas start at once.
   */
  migrate(migrations: readonly Migration[]): Promise<void>
  close(): Promise<void>
}
