// Reads gatehouse.yaml, validates it and reports every problem at once as FILE: PATH: what is expected.
import { formatPath } from '../schema/path.ts'
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { z } from 'zod'
import { gatewayConfigSchema, type GatewayConfig } from './schema.ts'

export class ConfigError extends Error {
  readonly file: string
  readonly problems: string[]

  constructor(file: string, problems: string[]) {
    super(`invalid configuration in ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }
}

/** `clusters[0].credential.tokenFile` from a zod issue path. */

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union')
    return 'expected exactly one of the documented forms (see docs/configuration.md)'
  if (issue.code === 'unrecognized_keys')
    return `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`
  return issue.message
}

/** Validates an already-parsed object; `file` names the source in errors. */
export function parseConfig(raw: unknown, file: string): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(raw)
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((i) => `${file}: ${formatPath(i.path)}: ${describeIssue(i)}`),
    )
  }
  return result.data
}

// Relative file paths in the config are relative to the config file, not the working directory.
function resolvePaths(value: unknown, base: string, key = ''): unknown {
  if (typeof value === 'string') {
    return (key.endsWith('File') ||
      key === 'file' ||
      key === 'path' ||
      key === 'paths' ||
      key === 'dataDir') &&
      !isAbsolute(value)
      ? resolve(base, value)
      : value
  }
  if (Array.isArray(value))
    return value.map((v) => resolvePaths(v, base, key === 'paths' ? key : ''))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolvePaths(v, base, k)]))
  }
  return value
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/** Loads the GatewayConfig document of a YAML file (other documents, e.g. policies, are ignored). */
export function loadConfig(file: string): GatewayConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new ConfigError(file, [`${file}: cannot read: ${(e as Error).message}`])
  }
  const docs = parseAllDocuments(text, { prettyErrors: true })
  const problems: string[] = []
  const values: unknown[] = []
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    for (const err of doc.errors) problems.push(`${file}: ${err.message}`)
    values.push(doc.toJS())
  }
  if (problems.length) throw new ConfigError(file, problems)
  const candidates = values.filter(
    (v) => v && typeof v === 'object' && (v as { kind?: unknown }).kind === 'GatewayConfig',
  )
  if (candidates.length !== 1) {
    throw new ConfigError(file, [
      `${file}: expected exactly one document with kind: GatewayConfig, found ${candidates.length}`,
    ])
  }
  return deepFreeze(parseConfig(resolvePaths(candidates[0], dirname(resolve(file))), file))
}

export { formatPath } from '../schema/path.ts'
