// The layering of .dependency-cruiser.cjs, checked on the real tree (what `npm run lint` runs)
// and shown to fail on trees that break it: a module cycle, a knowledge module doing I/O, a
// domain importing the pipeline, and a cycle between folders (which no module-level rule sees).
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser'
import { tempDir } from '../harness/temp-dir.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const rules = createRequire(import.meta.url)(
  join(root, '.dependency-cruiser.cjs'),
) as IConfiguration

async function cruiseTree(dir: string): Promise<ICruiseResult> {
  const previous = process.cwd()
  process.chdir(dir)
  try {
    const r = await cruise(
      ['src'],
      {
        validate: true,
        ruleSet: { forbidden: rules.forbidden ?? [] },
        doNotFollow: { path: 'node_modules' },
        tsPreCompilationDeps: true,
      },
      { extensions: ['.ts', '.js'] },
    )
    assert.ok(typeof r.output === 'object')
    return r.output
  } finally {
    process.chdir(previous)
  }
}

/** src/<folder>/... → folder; files at src/ are the root ('.'). */
function folderOf(path: string): string {
  const parts = path.split('/')
  return parts.length > 2 ? parts[1]! : '.'
}

/** Strongly connected folders (Tarjan): every group of folders that import each other. */
export function folderCycles(result: ICruiseResult): string[][] {
  const edges = new Map<string, Set<string>>()
  for (const m of result.modules) {
    if (!m.source.startsWith('src/')) continue
    const from = folderOf(m.source)
    for (const d of m.dependencies) {
      if (!d.resolved.startsWith('src/')) continue
      const to = folderOf(d.resolved)
      if (to !== from) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to)
    }
  }
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const groups: string[][] = []
  const visit = (v: string): void => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = []
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        onStack.delete(w)
        group.push(w)
        if (w === v) break
      }
      if (group.length > 1) groups.push(group.sort())
    }
  }
  for (const v of edges.keys()) if (!index.has(v)) visit(v)
  return groups
}

/** A small tree of modules: path → what it imports (relative to src/). */
function tree(files: Record<string, string[]>): string {
  const dir = tempDir('gh-architecture-')
  for (const [path, imports] of Object.entries(files)) {
    const file = join(dir, 'src', path)
    mkdirSync(dirname(file), { recursive: true })
    const lines = imports.map((target, i) => {
      const spec = relative(dirname(join('src', path)), join('src', target))
      return `import * as m${i} from '${spec.startsWith('.') ? spec : `./${spec}`}'\nvoid m${i}`
    })
    writeFileSync(file, `${lines.join('\n')}\nexport const here = 1\n`)
  }
  return dir
}

function violated(result: ICruiseResult): string[] {
  return [...new Set(result.summary.violations.map((v) => v.rule.name))].sort()
}

describe('architecture rules', () => {
  test('the tree keeps them: no module cycle, no layering violation, no folder cycle', async () => {
    const result = await cruiseTree(root)
    assert.deepEqual(
      result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`),
      [],
    )
    assert.ok(result.modules.length > 150, `cruised ${result.modules.length} modules`)
    assert.deepEqual(folderCycles(result), [])
  })

  test('a deliberately introduced module cycle fails', async () => {
    const r = await cruiseTree(
      tree({ 'kube/a.ts': ['kube/b.ts'], 'kube/b.ts': ['kube/a.ts'], 'kube/c.ts': [] }),
    )
    assert.deepEqual(violated(r), ['no-cycles'])
  })

  test('knowledge doing I/O, a domain importing the pipeline, the pipeline importing the listener fail', async () => {
    const r = await cruiseTree(
      tree({
        'kube/info.ts': ['upstream/forward.ts'],
        'upstream/forward.ts': [],
        'audit/build.ts': ['pipeline/context.ts'],
        'pipeline/context.ts': ['http/server.ts'],
        'http/server.ts': [],
      }),
    )
    assert.deepEqual(violated(r), [
      'domains-do-not-know-the-pipeline',
      'knowledge-does-no-io',
      'pipeline-does-not-know-its-callers',
    ])
  })

  test('a cycle between folders is found even when no module cycle exists', async () => {
    const r = await cruiseTree(
      tree({
        'audit/store.ts': ['sessions/record.ts'],
        'sessions/record.ts': [],
        'sessions/manager.ts': ['audit/build.ts'],
        'audit/build.ts': [],
      }),
    )
    assert.deepEqual(violated(r), [])
    assert.deepEqual(folderCycles(r), [['audit', 'sessions']])
  })
})
