// Where Gatehouse spends CPU: self time per function and per package from a V8 .cpuprofile.
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export function packageOf(url: string): string {
  if (!url) return '(native/idle)'
  if (url.startsWith('node:'))
    return url.split('/')[0] === 'node:internal' ? `node:${url.split('/')[1] ?? 'internal'}` : url
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]!
  const src = /\/build\/(src\/[^/]+)/.exec(url)
  if (src) return `gatehouse ${src[1]}`
  return url.replace(/^file:\/\//, '')
}

export function summarizeProfile(file: string, top = 15): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  )
  // Percentages of busy time: the run includes the other subjects' phases, when Gatehouse idles.
  const isIdle = (id: number): boolean => byId.get(id)?.callFrame.functionName === '(idle)'
  const total =
    [...selfUs.entries()].filter(([id]) => !isIdle(id)).reduce((a, [, b]) => a + b, 0) || 1
  const fn = new Map<string, number>()
  const pkg = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!
    const name = n.callFrame.functionName || '(anonymous)'
    if (name === '(idle)') continue
    if (name === '(program)' || name === '(garbage collector)') {
      pkg.set(name, (pkg.get(name) ?? 0) + us)
      fn.set(name, (fn.get(name) ?? 0) + us)
      continue
    }
    const key = `${name} ${packageOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
    fn.set(key, (fn.get(key) ?? 0) + us)
    pkg.set(packageOf(n.callFrame.url), (pkg.get(packageOf(n.callFrame.url)) ?? 0) + us)
  }
  const fmt = (m: Map<string, number>): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n')
  return `busy CPU ${(total / 1e6).toFixed(1)} s; share of busy time by package:\n${fmt(pkg)}\n\nby function:\n${fmt(fn)}`
}
