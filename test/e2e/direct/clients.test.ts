// helm 4 and @kubernetes/client-node directly against the harness API server.
import { clientNodeScenarios } from '../scenarios/client-node.ts'
import { helmScenarios } from '../scenarios/helm.ts'
import { directTarget } from './target.ts'

const target = directTarget()
helmScenarios(target)
clientNodeScenarios(target)
