// The database a configuration names: an SQLite file, or PostgreSQL by URL (inline, from a
// file, or from an environment variable).
import { readFileSync } from 'node:fs'
import type { Database } from './database.ts'
import { openPostgres } from './postgres.ts'
import { openSqlite } from './sqlite.ts'

export interface PostgresUrlSource {
  url?: string | undefined
  urlFile?: string | undefined
  urlEnv?: string | undefined
}

export type DatabaseSpec =
  | { sqlite: { path: string; readonly?: boolean } }
  | { postgres: PostgresUrlSource & { schema: string } }

/** `configPath` names the setting in messages (gatehouse.yaml's `audit.store.postgres`). */
export function postgresUrl(p: PostgresUrlSource, configPath = 'audit.store.postgres'): string {
  if (p.url) return p.url
  if (p.urlFile) return readFileSync(p.urlFile, 'utf8').trim()
  const v = process.env[p.urlEnv!]
  if (!v) throw new Error(`${configPath}.urlEnv: environment variable ${p.urlEnv} is not set`)
  return v
}

export function openDatabase(spec: DatabaseSpec): Database {
  if ('postgres' in spec)
    return openPostgres({
      connectionString: postgresUrl(spec.postgres),
      schema: spec.postgres.schema,
    })
  return openSqlite(spec.sqlite.path, { readonly: spec.sqlite.readonly ?? false })
}
