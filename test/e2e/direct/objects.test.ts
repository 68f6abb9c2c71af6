// Real kubectl (1.20, 1.32, 1.35) manages objects directly against the harness API server.
import { kubectlCrudScenarios } from '../scenarios/kubectl-crud.ts'
import { directTarget } from './target.ts'

kubectlCrudScenarios(directTarget())
