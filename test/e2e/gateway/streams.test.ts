// logs, exec, attach and port-forward (WebSocket, SPDY, SPDY-in-WebSocket) through Gatehouse.
import { kubectlStreamScenarios } from '../scenarios/kubectl-streams.ts'
import { useGatewayEnv } from './env.ts'
import { gatewayTarget } from './target.ts'

kubectlStreamScenarios(gatewayTarget(useGatewayEnv()))
