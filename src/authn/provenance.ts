// The user-extra keys Gatehouse may attach when impersonating (Impersonate-Extra-<key>).
// Kubernetes RBAC has no wildcard for extra keys, so Gatehouse's ClusterRole lists each one
// (deploy/rbac/impersonate.yaml; a unit test keeps both lists equal). Sending a key not granted
// there would make the API server refuse every request.
export const PROVENANCE_PREFIX = 'gatehouse.dev/'

export const PROVENANCE_KEYS = [
  // every identity
  'issuer',
  'subject',
  'request-id',
  'auth-method',
  // GitHub Actions
  'repository',
  'repository-owner',
  'ref',
  'ref-type',
  'environment',
  'workflow',
  'job-workflow-ref',
  'run-id',
  'run-attempt',
  'actor',
  'event-name',
  'sha',
  // GitLab CI
  'project-path',
  'project-id',
  'namespace-path',
  'ref-protected',
  'pipeline-id',
  'job-id',
  'user-login',
  // Kubernetes service accounts
  'namespace',
  'serviceaccount',
  'pod-name',
] as const

export type ProvenanceKey = (typeof PROVENANCE_KEYS)[number]

export const isProvenanceKey = (key: string): key is ProvenanceKey =>
  (PROVENANCE_KEYS as readonly string[]).includes(key)

export const provenance = (key: ProvenanceKey): string => PROVENANCE_PREFIX + key
