// An unauthenticated login flood on the admin listener: `gatehouse serve` as its own process
// (admin listener, approvals page with OIDC login against the harness issuer), then `total`
// `GET /login/oidc` over 32 keep-alive TLS connections, reading the process's resident set
// (VmRSS, /proc/<pid>/status) before and after every `step`. A login in flight is a sealed
// cookie, so the resident set levels off after the first steps (allocator and JIT warm-up);
// the earlier in-memory logins grew it by about 8.5 MB per 20,000 for the 10 minutes a login
// was kept. Runs inside `npm run bench`, or alone with no cluster:
//
//   npm run build && node build/bench/login-flood.js [total] [step]
//
// The data path's cluster is a closed loopback port: nothing here reaches it.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { repoRoot } from '../test/harness/binaries.ts'
import { startOidcIssuer } from '../test/harness/oidc-issuer.ts'
import { freePort } from '../test/harness/ports.ts'

export interface LoginFloodResult {
  total: number
  /** [starts so far, VmRSS in MB] from 0 (idle, after one start) to `total`. */
  samples: Array<[number, number]>
  /** VmHWM: the largest resident set the process had. */
  peakMb: number
  /** Starts per second over the whole flood. */
  rate: number
}

const rssMb = (pid: number, field = 'VmRSS'): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  )
  if (!m) throw new Error(`no ${field} for process ${pid}`)
  return Number(m[1]) / 1024
}

async function waitFor(url: string, agent: Agent): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const r = await request(url, { dispatcher: agent })
      await r.body.dump()
      if (r.statusCode < 500) return
    } catch {
      /* not yet listening */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function measureLoginFlood(
  dir: string,
  total = 160_000,
  step = 20_000,
): Promise<LoginFloodResult> {
  mkdirSync(dir, { recursive: true })
  const issuer = await startOidcIssuer({ dir })
  const dataDir = join(dir, 'login-flood-data')
  const adminPort = await freePort()
  const tokenFile = join(dir, 'login-flood-upstream.token')
  writeFileSync(tokenFile, 'unused\n', { mode: 0o600 })
  const configFile = join(dir, 'login-flood.yaml')
  writeFileSync(
    configFile,
    JSON.stringify({
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'GatewayConfig',
      dataDir,
      logLevel: 'warn',
      listen: { address: '127.0.0.1', port: await freePort() },
      authentication: {
        authenticators: [
          { oidc: { name: 'ci', issuer: issuer.url, caFile: issuer.caFile, audiences: ['gh'] } },
        ],
      },
      clusters: [
        {
          name: 'unused',
          default: true,
          server: `https://127.0.0.1:${await freePort()}`,
          caFile: issuer.caFile,
          credential: { tokenFile },
        },
      ],
      admin: { listen: { address: '127.0.0.1', port: adminPort }, subjects: [{ name: 'admin' }] },
      approvals: {
        web: {
          oidc: { issuer: issuer.url, caFile: issuer.caFile, clientId: 'gatehouse-approvals' },
        },
      },
    }),
  )
  const proc = spawn(
    process.execPath,
    [join(repoRoot, 'build', 'src', 'cli', 'main.js'), 'serve', '--config', configFile],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const exited = new Promise((r) => proc.once('exit', r))
  try {
    const caFile = join(dataDir, 'pki', 'ca.crt')
    for (let i = 0; i < 300; i++) {
      try {
        readFileSync(caFile)
        break
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const agent = new Agent({ connections: 32, connect: { ca: readFileSync(caFile) } })
    const url = `https://127.0.0.1:${adminPort}/login/oidc?next=/approvals/`
    await waitFor(url, agent)
    const pid = proc.pid!
    const samples: Array<[number, number]> = [[0, rssMb(pid)]]
    const t0 = Date.now()
    for (let done = 0; done < total; done += step) {
      let left = step
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (left-- > 0) {
            const r = await request(`${url}${done + left}`, { dispatcher: agent })
            await r.body.dump()
            if (r.statusCode !== 303) throw new Error(`GET /login/oidc answered ${r.statusCode}`)
          }
        }),
      )
      samples.push([done + step, rssMb(pid)])
    }
    const rate = total / ((Date.now() - t0) / 1000)
    const peakMb = rssMb(pid, 'VmHWM')
    await agent.close()
    return { total, samples, peakMb, rate }
  } finally {
    proc.kill('SIGINT')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
    await issuer.close()
  }
}

export function loginFloodReport(r: LoginFloodResult): string[] {
  const first = r.samples[Math.min(2, r.samples.length - 1)]!
  const last = r.samples[r.samples.length - 1]!
  return [
    `### Unauthenticated login flood (admin listener, \`GET /login/oidc\`)`,
    '',
    `${r.total} starts at ${r.rate.toFixed(0)}/s; resident set (MB) after each step:`,
    '',
    '| starts | ' + r.samples.map(([n]) => String(n)).join(' | ') + ' |',
    '| --- | ' + r.samples.map(() => '---').join(' | ') + ' |',
    '| RSS MB | ' + r.samples.map(([, mb]) => mb.toFixed(0)).join(' | ') + ' |',
    '',
    `From ${first[0]} to ${last[0]} starts: ${(last[1] - first[1]).toFixed(1)} MB ` +
      `(${(((last[1] - first[1]) * 1048576) / (last[0] - first[0])).toFixed(1)} bytes per start); peak ${r.peakMb.toFixed(0)} MB.`,
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const total = Number(process.argv[2] ?? 160_000)
  const step = Number(process.argv[3] ?? 20_000)
  const r = await measureLoginFlood(mkdtempSync(join(tmpdir(), 'gh-login-flood-')), total, step)
  console.log(loginFloodReport(r).join('\n'))
}
