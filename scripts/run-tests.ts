// The README's test command: starts a real test cluster, runs every test file against it with
// node:test, stops the cluster, then does the same for the compatibility subset against the
// oldest supported minor; fails if any process of the harness is left behind or anything in the
// temp folder (the run points TMPDIR at a folder of its own: test/harness/temp-folder.ts).
//
//   node build/scripts/run-tests.js            unit, integration and e2e tests
//   node build/scripts/run-tests.js --unit     only tests that need no cluster (test/unit)
//   node build/scripts/run-tests.js FILTER...  only files whose path contains a FILTER
//   node build/scripts/run-tests.js FILTER --test-name-pattern=REGEX   only the matching tests
//   --compat    also run the matching compatibility-subset files against the v1.35 cluster
//               (a run without FILTERs always does; GATEHOUSE_COMPAT=0 never does)
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  hasKubeApiserver,
  KUBE_APISERVER_COMPAT_VERSION,
  KUBECTL_VERSIONS,
} from '../test/harness/binaries.ts'
import { startCluster, CLUSTER_INFO_ENV } from '../test/harness/cluster.ts'
import { verifyJoinInvariant } from '../test/harness/join-invariant.ts'
import { stopAll } from '../test/harness/processes.ts'
import { KEEP_FAILED_ENV, openRunTempFolder } from '../test/harness/temp-folder.ts'

const buildRoot = join(fileURLToPath(import.meta.url), '..', '..')

/**
 * What also runs against the oldest supported minor (KUBE_APISERVER_COMPAT_VERSION): the
 * differential classification, the stream dialects of exec/attach/port-forward, masking of every
 * response shape, approvals holding.
 */
const COMPAT_SUBSET = [
  'e2e/gateway/request-info-differential.test.js',
  'e2e/gateway/sessions.test.js',
  'e2e/gateway/streams.test.js',
  'e2e/gateway/masking.test.js',
  'e2e/gateway/approvals.test.js',
]

function findTests(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry)
    if (statSync(p).isDirectory()) out.push(...findTests(p))
    else if (entry.endsWith('.test.js')) out.push(p)
  }
  return out.sort()
}

/** Processes whose command line mentions the harness run directory: must be none at the end. */
function leftovers(marker: string): string[] {
  const out: string[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(marker)) out.push(`${pid}: ${cmd.slice(0, 200)}`)
    } catch {
      /* exited meanwhile */
    }
  }
  return out
}

function runNodeTest(files: string[], env: NodeJS.ProcessEnv, nodeArgs: string[]): Promise<number> {
  const concurrency = process.env['GATEHOUSE_TEST_CONCURRENCY'] ?? '2'
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--test',
        '--test-reporter=spec',
        `--test-concurrency=${concurrency}`,
        '--test-timeout=300000',
        ...nodeArgs,
        ...files,
      ],
      { stdio: 'inherit', env },
    )
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig)
    }
    process.once('SIGINT', forward)
    process.once('SIGTERM', forward)
    child.on('close', (code) => resolve(code ?? 1))
  })
}

/** One cluster, the files against it, the join invariant, and nothing left behind. */
async function runAgainstCluster(
  label: string,
  files: string[],
  version: string | undefined,
  nodeArgs: string[],
): Promise<number> {
  const env = { ...process.env }
  const t0 = Date.now()
  console.log(`[harness] ${label}: starting etcd, kube-apiserver and the fake kubelet ...`)
  const cluster = await startCluster(version ? { version } : {})
  const runDir = cluster.info.runDir
  let code = 1
  try {
    const infoFile = join(runDir, 'cluster.json')
    writeFileSync(infoFile, JSON.stringify(cluster.info, null, 2))
    env[CLUSTER_INFO_ENV] = infoFile
    console.log(
      `[harness] ${label}: ${files.length} test files against kube-apiserver ${cluster.info.serverVersion} at ${cluster.info.server}, ready in ${Date.now() - t0} ms (${runDir})`,
    )
    code = await runNodeTest(files, env, nodeArgs)
    // every API server audit event joins an allowing Gatehouse record or a harness client
    if (!(await verifyJoinInvariant(cluster.info))) code = code || 1
    console.log(
      `[harness] ${label} against kube-apiserver ${cluster.info.serverVersion}: ${code === 0 ? 'passed' : 'FAILED'}`,
    )
  } finally {
    if (code !== 0 && process.env[KEEP_FAILED_ENV] === '1')
      process.env['GATEHOUSE_KEEP_HARNESS'] = '1'
    await cluster.stop()
    await stopAll()
    const left = leftovers(runDir)
    if (left.length) {
      console.error(`[harness] processes left behind:\n${left.join('\n')}`)
      code = code || 1
    } else console.log('[harness] no process left behind')
  }
  return code
}

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const unitOnly = args.includes('--unit')
  const filters = args.filter((a) => !a.startsWith('--'))
  let files = findTests(join(buildRoot, 'test'))
  if (unitOnly) files = files.filter((f) => relative(buildRoot, f).startsWith(join('test', 'unit')))
  if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)))
  if (files.length === 0) {
    console.error('no test files matched')
    return 1
  }
  const needsCluster = files.some((f) => !relative(buildRoot, f).startsWith(join('test', 'unit')))
  // one test of a file: --test-name-pattern=REGEX goes to node:test as it is
  const nodeArgs = args.filter((a) => a.startsWith('--test-name-pattern='))
  const temp = openRunTempFolder() // sets TMPDIR for the clusters and every test process
  let code = 1
  try {
    code = needsCluster
      ? await runClusters(files, filters, args, nodeArgs)
      : await runNodeTest(files, { ...process.env }, nodeArgs)
  } finally {
    const { failures, notes, kept } = temp.finish(code !== 0)
    for (const n of notes) console.log(`[harness] ${n}`)
    for (const f of failures) console.error(`[harness] ${f}`)
    if (failures.length) code = code || 1
    else if (!kept) console.log('[harness] nothing left in the temp folder')
  }
  return code
}

/** The whole suite against the default server, then the compatibility subset against the oldest. */
async function runClusters(
  files: string[],
  filters: string[],
  args: string[],
  nodeArgs: string[],
): Promise<number> {
  console.log(`[harness] kubectl versions: ${KUBECTL_VERSIONS.join(', ')}`)
  let code = await runAgainstCluster('whole suite', files, undefined, nodeArgs)
  const compatFiles = files.filter((f) => COMPAT_SUBSET.some((c) => f.endsWith(c)))
  const wanted =
    process.env['GATEHOUSE_COMPAT'] !== '0' && (filters.length === 0 || args.includes('--compat'))
  if (wanted && compatFiles.length) {
    if (hasKubeApiserver(KUBE_APISERVER_COMPAT_VERSION))
      code =
        (await runAgainstCluster(
          'compatibility subset',
          compatFiles,
          KUBE_APISERVER_COMPAT_VERSION,
          nodeArgs,
        )) || code
    else
      console.log(
        `[harness] compatibility subset skipped: no kube-apiserver ${KUBE_APISERVER_COMPAT_VERSION} in the cache (run 'npm run prereqs')`,
      )
  }
  return code
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
