// The database layer every domain's repository runs on: SQLite or PostgreSQL, migrations,
// change notifications, storable strings. It imports no domain.
export type { BatchTable, Database, Dialect, Notifications, SqlRunner } from './database.ts'
export { filterClause } from './filter.ts'
export { checkedMigrations, MIGRATIONS_TABLE, type Migration } from './migrations.ts'
export { inProcessNotifications } from './notifications.ts'
export { openDatabase, postgresUrl, type DatabaseSpec, type PostgresUrlSource } from './open.ts'
export { openPostgres, type PostgresOptions } from './postgres.ts'
export { startRetention, type Expiring } from './retention.ts'
export { openSqlite } from './sqlite.ts'
export { fromStorableText, isContentError, storableParams, storableText } from './storable.ts'
