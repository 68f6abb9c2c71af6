// Databases for store tests: a fresh SQLite file, or a fresh schema of the PostgreSQL server on
// this machine (dropped by `cleanup`).
import { join } from 'node:path'
import pg from 'pg'
import { openPostgres, openSqlite, type Database } from '../../../src/store/index.ts'
import { tempDir } from '../../harness/temp-dir.ts'

export const PG_URL =
  process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

let schemas = 0

/** A schema name no other test uses. */
export function freshSchema(tag: string): string {
  return `gh_${tag}_${process.pid}_${Date.now()}_${++schemas}`
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await c.end()
}

export interface TestDatabase {
  /** Opens another connection to the same database (a second replica, or a restart). */
  open(): Database
  cleanup(): Promise<void>
}

/** A fresh, empty database of each dialect. */
export const DIALECTS: readonly ['sqlite' | 'postgres', (tag: string) => TestDatabase][] = [
  [
    'sqlite',
    () => {
      const path = join(tempDir('gh-store-'), 'gatehouse.db')
      return { open: () => openSqlite(path), cleanup: () => Promise.resolve() }
    },
  ],
  [
    'postgres',
    (tag) => {
      const schema = freshSchema(tag)
      return {
        open: () => openPostgres({ connectionString: PG_URL, schema }),
        cleanup: () => dropSchema(schema),
      }
    },
  ],
]
