// One HTTPS request to the admin listener named by gatehouse.yaml (or --admin-url), with a
// bearer token: for the CLI commands that act (kill a session, approve or deny a request).
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import type { GatewayConfig } from '../config/index.ts'

export async function adminRequest(
  config: GatewayConfig,
  method: 'GET' | 'POST',
  path: string,
  token: string,
  opts: { url?: string; caFile?: string; body?: unknown } = {},
): Promise<{ code: number; body: string }> {
  if (!config.admin && !opts.url)
    throw new Error('the configuration has no admin listener (admin:); give --admin-url')
  const listen = config.admin?.listen
  const url = new URL(
    path,
    opts.url ??
      `https://${listen!.address === '0.0.0.0' ? '127.0.0.1' : listen!.address}:${listen!.port}`,
  )
  const ca = readFileSync(opts.caFile ?? join(config.dataDir, 'pki', 'ca.crt'))
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () =>
          resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        )
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}
