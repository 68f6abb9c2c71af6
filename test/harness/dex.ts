// Dex (github.com/dexidp/dex, built from the Go module proxy) as the approvers' identity
// provider: HTTPS with a certificate of a harness CA, in-memory storage, its local password
// database with static users, and one public static client (PKCE, no secret). The browser signs
// in through Dex's own login form.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { readFileSync } from 'node:fs'
import { goClient } from './go-clients.ts'
import { createCa, issueCert } from './pki.ts'
import { freePort } from './ports.ts'
import { startProcess, type ManagedProcess } from './processes.ts'

/** The bcrypt hash (cost 10) of DEX_PASSWORD, as in Dex's own example configuration. */
const PASSWORD_HASH = '$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W'
export const DEX_PASSWORD = 'password'

export interface DexUser {
  /** The login name on Dex's form. */
  email: string
  preferredUsername: string
  groups: string[]
}

export interface Dex {
  readonly issuer: string
  readonly caFile: string
  readonly clientId: string
  readonly process: ManagedProcess
  stop(): Promise<void>
}

/** Where Dex will listen, so that Gatehouse can be configured before Dex knows its redirect URI. */
export async function reserveDex(
  dir: string,
): Promise<{ issuer: string; caFile: string; port: number }> {
  const port = await freePort()
  const ca = createCa(dir, 'dex-ca')
  issueCert(ca, 'dex')
  return { issuer: `https://127.0.0.1:${port}/dex`, caFile: ca.certFile, port }
}

export async function startDex(opts: {
  dir: string
  reserved: { issuer: string; caFile: string; port: number }
  clientId: string
  redirectUris: string[]
  users: DexUser[]
}): Promise<Dex> {
  const binary = await goClient('dex')
  const { dir, reserved } = opts
  const config = {
    issuer: reserved.issuer,
    storage: { type: 'memory' },
    web: {
      https: `127.0.0.1:${reserved.port}`,
      tlsCert: join(dir, 'dex.crt'),
      tlsKey: join(dir, 'dex.key'),
    },
    logger: { level: 'debug', format: 'json' },
    oauth2: { skipApprovalScreen: true },
    staticClients: [
      {
        id: opts.clientId,
        name: 'Gatehouse approvals',
        public: true,
        redirectURIs: opts.redirectUris,
      },
    ],
    enablePasswordDB: true,
    staticPasswords: opts.users.map((u, i) => ({
      email: u.email,
      hash: PASSWORD_HASH,
      username: u.preferredUsername,
      preferredUsername: u.preferredUsername,
      groups: u.groups,
      emailVerified: true,
      userID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    })),
  }
  const configFile = join(dir, 'dex-config.yaml')
  // JSON is YAML; Dex reads either
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  const proc = startProcess('dex', binary, ['serve', configFile], {
    logFile: join(dir, 'dex.log'),
  })
  const agent = new Agent({ connect: { ca: readFileSync(reserved.caFile) } })
  try {
    const deadline = Date.now() + 30_000
    for (;;) {
      if (proc.child.exitCode !== null)
        throw new Error(`dex exited with ${proc.child.exitCode}; see ${proc.logFile}`)
      try {
        const res = await request(`${reserved.issuer}/.well-known/openid-configuration`, {
          dispatcher: agent,
        })
        const doc = (await res.body.json()) as { issuer?: string }
        if (res.statusCode === 200 && doc.issuer === reserved.issuer) break
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`dex did not start; see ${proc.logFile}`)
      await sleep(100)
    }
  } finally {
    await agent.close()
  }
  return {
    issuer: reserved.issuer,
    caFile: reserved.caFile,
    clientId: opts.clientId,
    process: proc,
    stop: () => proc.stop(),
  }
}
