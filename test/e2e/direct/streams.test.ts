// logs, exec, attach and port-forward through the real API server to the fake kubelet.
import { kubectlStreamScenarios } from '../scenarios/kubectl-streams.ts'
import { directTarget } from './target.ts'

kubectlStreamScenarios(directTarget())
