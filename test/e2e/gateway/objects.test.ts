// Real kubectl (1.20, 1.32, 1.35) manages objects through Gatehouse, exactly as directly.
import { kubectlCrudScenarios } from '../scenarios/kubectl-crud.ts'
import { useGatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

kubectlCrudScenarios(gatewayTarget(useGatewayEnv()))
