// Clients pointed at Gatehouse, each with its own non-human identity: kubectl and helm carry a
// GitHub-Actions-shaped OIDC token (kubectl 1.35 through the `gatehouse credential` exec plugin,
// as a CI pipeline would), client-node a token the API server minted for a ServiceAccount.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../harness/binaries.ts'
import type { Target } from '../scenarios/target.ts'
import { CI_REPOSITORY, type GatewayEnv } from './env.ts'

export function gatewayTarget(env: () => GatewayEnv): () => Target {
  return () => {
    const e = env()
    return {
      name: 'gw',
      cluster: e.cluster,
      async kubeconfig(client) {
        if (client === 'client-node') {
          return e.gatehouse.kubeconfig({
            token: await e.serviceAccountToken('client-node'),
            name: 'client-node',
          })
        }
        const token = await e.issuer.mintGitHubActions({
          repository: CI_REPOSITORY,
          repository_owner: CI_REPOSITORY.split('/')[0],
        })
        if (client === '1.35') {
          const tokenFile = join(e.dir, `ci-token-${client}`)
          writeFileSync(tokenFile, token, { mode: 0o600 })
          return e.gatehouse.kubeconfig({
            exec: {
              command: process.execPath,
              args: [
                join(repoRoot, 'build', 'src', 'cli', 'main.js'),
                'credential',
                '--token-file',
                tokenFile,
              ],
            },
            name: `kubectl-${client}`,
          })
        }
        return e.gatehouse.kubeconfig({ token, name: `client-${client}` })
      },
    }
  }
}
