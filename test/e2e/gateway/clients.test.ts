// helm 4 and @kubernetes/client-node through Gatehouse.
import { clientNodeScenarios } from '../scenarios/client-node.ts'
import { helmScenarios } from '../scenarios/helm.ts'
import { useGatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

const target = gatewayTarget(useGatewayEnv())
helmScenarios(target)
clientNodeScenarios(target)
