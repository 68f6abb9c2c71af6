// The migrations runner's rules, shared by both dialects. Each domain owns its migrations (its
// tables' DDL, portable: TEXT, BIGINT, INTEGER, DOUBLE PRECISION); src/stores.ts lists them all
// in one order. A version, once released, never changes: existing databases have applied it
// and only the versions they lack are run (`gatehouse_schema_migrations` says which).
export interface Migration {
  readonly version: number
  readonly description: string
  readonly statements: readonly string[]
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`

/** Records an applied version (its three parameters: version, description, time). */
export function recordMigrationSql(placeholder: (i: number) => string): string {
  return `INSERT INTO gatehouse_schema_migrations (version, description, applied_at) VALUES (${placeholder(0)}, ${placeholder(1)}, ${placeholder(2)})`
}

/**
 * `list` itself, checked: throws a TypeError when it is not strictly ascending by positive
 * version (two domains claiming one version, or a list out of order), a programming error
 * caught before anything runs.
 */
export function checkedMigrations(list: readonly Migration[]): readonly Migration[] {
  list.forEach((m, i) => {
    if (!Number.isSafeInteger(m.version) || m.version < 1)
      throw new TypeError(
        `migration "${m.description}": version ${m.version} is not a positive integer`,
      )
    const prev = list[i - 1]
    if (prev && m.version <= prev.version)
      throw new TypeError(
        `migration ${m.version} ("${m.description}") follows ${prev.version} ("${prev.description}"): versions must be listed once each, ascending`,
      )
  })
  return list
}
