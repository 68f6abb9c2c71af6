// Where the harness finds the real binaries: the prereqs cache, KUBEBUILDER_ASSETS, or PATH.
import { accessSync, constants, existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const KUBE_APISERVER_VERSION = 'v1.20.2'

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

export function kubeApiserverPath(): string {
  return firstExecutable('kube-apiserver', [
    assets('kube-apiserver'),
    join(cacheDir(), `kube-apiserver-${KUBE_APISERVER_VERSION}`, 'kube-apiserver'),
    onPath('kube-apiserver'),
  ])
}

export function etcdPath(): string {
  return firstExecutable('etcd', [assets('etcd'), onPath('etcd')])
}

/** The three kubectl generations the suite proves: SPDY-only 1.20, WebSocket-first 1.32 and 1.35. */
export type KubectlVersion = '1.20' | '1.32' | '1.35'
export const KUBECTL_VERSIONS: readonly KubectlVersion[] = ['1.20', '1.32', '1.35']

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
  }
}

export function helmPath(): string {
  return firstExecutable('helm', [join(cacheDir(), 'kubectl-1.35', 'helm', 'helm'), onPath('helm')])
}
