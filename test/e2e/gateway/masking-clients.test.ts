// Masking on, non-secret data keeps working: the kubectl CRUD scenarios (create, get, list,
// patch, apply, server-side apply, delete, watch) and the client-node scenarios (typed CRUD,
// watch, logs, exec) run through a Gatehouse that masks every response, as they run direct.
import { describe } from 'node:test'
import { clientNodeScenarios } from '../scenarios/client-node.ts'
import { kubectlCrudScenarios } from '../scenarios/kubectl-crud.ts'
import { useGatewayEnv } from './env.ts'
import { policies } from './masking-policies.ts'
import { gatewayTarget } from './target.ts'

describe('masking on: clients keep working', () => {
  const env = useGatewayEnv({ policies: (_issuer, dir) => policies(dir) })
  const base = gatewayTarget(env)
  const target = (): ReturnType<typeof base> => ({ ...base(), name: 'gwmask' })
  kubectlCrudScenarios(target)
  clientNodeScenarios(target)
})
