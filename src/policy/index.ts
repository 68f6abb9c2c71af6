// Policy as code: documents → compiled rule index → one Decision per request.
export { compileCondition, ConditionError } from './cel.ts'
export {
  DEFAULT_AUDIT_LEVEL,
  ruleRef,
  type Action,
  type CollectionFilter,
  type Decision,
  type DecidingRule,
  type Obligations,
} from './decision.ts'
export {
  PolicyCompileError,
  PolicySet,
  subjectsMatcher,
  type ExecRequest,
  type ObjectNeeds,
  type PolicyRequest,
  type RequestObject,
} from './engine.ts'
export { compileGlob, compileGlobs } from './glob.ts'
export { collectionDropper, filterSources } from './collection-filter.ts'
export {
  listPolicyFiles,
  loadPolicies,
  parsePolicyText,
  PolicyLoadError,
  type LoadedPolicy,
} from './load.ts'
export {
  AUDIT_LEVELS,
  KNOWN_VERBS,
  POLICY_API_VERSION,
  policySchema,
  type ApprovalObligation,
  type AuditLevel,
  type ForwardingMapping,
  type MaskObligation,
  type PolicyDocument,
  type SessionObligations,
} from './schema.ts'
export { compilePolicies, PolicySource, type PolicySourceStatus } from './source.ts'
