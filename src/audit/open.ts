// The audit store named by the configuration, opened and migrated.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AuditConfig } from '../config/index.ts'
import { openPostgresStore } from './postgres-store.ts'
import { openSqliteStore } from './sqlite-store.ts'
import type { AuditStore } from './store.ts'

export function postgresUrl(p: {
  url?: string | undefined
  urlFile?: string | undefined
  urlEnv?: string | undefined
}): string {
  if (p.url) return p.url
  if (p.urlFile) return readFileSync(p.urlFile, 'utf8').trim()
  const v = process.env[p.urlEnv!]
  if (!v)
    throw new Error(`audit.store.postgres.urlEnv: environment variable ${p.urlEnv} is not set`)
  return v
}

export function auditStoreFromConfig(
  audit: AuditConfig,
  dataDir: string,
  opts: { readonly?: boolean } = {},
): AuditStore {
  const { sqlite, postgres } = audit.store
  if (postgres)
    return openPostgresStore({ connectionString: postgresUrl(postgres), schema: postgres.schema })
  return openSqliteStore(sqlite?.path ?? join(dataDir, 'audit.db'), opts)
}
