// Reads Policy documents from files and folders (recursively; *.yaml, *.yml, *.json), with every
// problem reported at once as FILE: [document N] PATH: what is expected. Folders mounted from a
// Kubernetes ConfigMap work: their `..data` indirection (dot-entries) is skipped, symlinks followed.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { formatPath } from '../schema/path.ts'
import { policySchema, type PolicyDocument } from './schema.ts'

export class PolicyLoadError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid policies:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'PolicyLoadError'
    this.problems = problems
  }
}

export interface LoadedPolicy {
  doc: PolicyDocument
  /** `file` or `file#N` (1-based document number) for messages and audit. */
  source: string
}

const POLICY_FILE = /\.(ya?ml|json)$/

/** Every policy file under `paths`, sorted, with its size and mtime (for change detection). */
export function listPolicyFiles(paths: readonly string[]): { file: string; signature: string }[] {
  const out: { file: string; signature: string }[] = []
  const visit = (p: string, explicit: boolean): void => {
    const st = statSync(p)
    if (st.isDirectory()) {
      for (const entry of readdirSync(p).sort()) {
        if (entry.startsWith('.')) continue
        visit(join(p, entry), false)
      }
    } else if (explicit || POLICY_FILE.test(p)) {
      out.push({ file: p, signature: `${p}:${st.size}:${st.mtimeMs}:${st.ino}` })
    }
  }
  for (const p of paths) visit(p, true)
  return out
}

export function parsePolicyText(
  text: string,
  file: string,
): { policies: LoadedPolicy[]; problems: string[] } {
  const problems: string[] = []
  const policies: LoadedPolicy[] = []
  const docs = parseAllDocuments(text, { prettyErrors: true })
  const list = Array.isArray(docs) ? docs : [docs]
  list.forEach((doc, i) => {
    const where = list.length > 1 ? `${file}#${i + 1}` : file
    if (doc.errors.length) {
      for (const err of doc.errors) problems.push(`${where}: ${err.message.split('\n')[0]}`)
      return
    }
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) return
    // gatehouse.yaml may carry its own policies next to the GatewayConfig document.
    if (typeof value === 'object' && (value as { kind?: unknown }).kind === 'GatewayConfig') return
    const parsed = policySchema.safeParse(value)
    if (!parsed.success) {
      const name = (value as { metadata?: { name?: unknown } }).metadata?.name
      const label = typeof name === 'string' ? ` (policy '${name}')` : ''
      for (const issue of parsed.error.issues) {
        const msg =
          issue.code === 'unrecognized_keys'
            ? `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`
            : issue.code === 'invalid_union'
              ? 'expected exactly one of the documented forms (see docs/policy.md)'
              : issue.message
        problems.push(`${where}${label}: ${formatPath(issue.path)}: ${msg}`)
      }
      return
    }
    policies.push({ doc: parsed.data, source: where })
  })
  return { policies, problems }
}

/** Loads every policy under `paths`; throws PolicyLoadError listing all problems. */
export function loadPolicies(paths: readonly string[]): LoadedPolicy[] {
  const problems: string[] = []
  const policies: LoadedPolicy[] = []
  let files: { file: string }[] = []
  try {
    files = listPolicyFiles(paths)
  } catch (e) {
    throw new PolicyLoadError([`cannot read policies: ${(e as Error).message}`])
  }
  for (const { file } of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      problems.push(`${file}: cannot read: ${(e as Error).message}`)
      continue
    }
    const r = parsePolicyText(text, file)
    policies.push(...r.policies)
    problems.push(...r.problems)
  }
  if (problems.length) throw new PolicyLoadError(problems)
  return policies
}
