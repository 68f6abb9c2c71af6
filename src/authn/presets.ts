// How verified claims become an identity: presets for the CI systems and Kubernetes, or the
// claim mappings of the configuration.
import type { OidcConfig } from './config.ts'
import { provenance, PROVENANCE_PREFIX, type ProvenanceKey } from './provenance.ts'

export interface MappedIdentity {
  name: string
  groups: string[]
  extra: Record<string, string[]>
}

type Claims = Record<string, unknown>

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== ''
    ? v
    : typeof v === 'number' || typeof v === 'boolean'
      ? String(v)
      : undefined

function extrasFrom(claims: Claims, pairs: [ProvenanceKey, string][]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const [key, claim] of pairs) {
    const v = str(claims[claim])
    if (v !== undefined) out[provenance(key)] = [v]
  }
  return out
}

/** Thrown when a token lacks what its preset needs to name the caller. */
export class MappingError extends Error {}

function need(claims: Claims, claim: string, preset: string): string {
  const v = str(claims[claim])
  if (v === undefined) throw new MappingError(`the ${preset} token has no '${claim}' claim`)
  return v
}

function githubActions(claims: Claims): MappedIdentity {
  const repository = need(claims, 'repository', 'GitHub Actions')
  const owner = need(claims, 'repository_owner', 'GitHub Actions')
  const groups = [`github:${owner}`, `github-repo:${repository}`]
  const ref = str(claims['ref'])
  if (ref) groups.push(`github-ref:${repository}:${ref}`)
  const environment = str(claims['environment'])
  if (environment) groups.push(`github-env:${repository}:${environment}`)
  return {
    name: `github:${repository}`,
    groups,
    extra: extrasFrom(claims, [
      ['repository', 'repository'],
      ['repository-owner', 'repository_owner'],
      ['ref', 'ref'],
      ['ref-type', 'ref_type'],
      ['environment', 'environment'],
      ['workflow', 'workflow'],
      ['job-workflow-ref', 'job_workflow_ref'],
      ['run-id', 'run_id'],
      ['run-attempt', 'run_attempt'],
      ['actor', 'actor'],
      ['event-name', 'event_name'],
      ['sha', 'sha'],
    ]),
  }
}

function gitlabCi(claims: Claims): MappedIdentity {
  const project = need(claims, 'project_path', 'GitLab CI')
  const namespace = need(claims, 'namespace_path', 'GitLab CI')
  const groups = [`gitlab-namespace:${namespace}`, `gitlab-project:${project}`]
  const environment = str(claims['environment'])
  if (environment) groups.push(`gitlab-env:${project}:${environment}`)
  return {
    name: `gitlab:${project}`,
    groups,
    extra: extrasFrom(claims, [
      ['project-path', 'project_path'],
      ['project-id', 'project_id'],
      ['namespace-path', 'namespace_path'],
      ['ref', 'ref'],
      ['ref-type', 'ref_type'],
      ['ref-protected', 'ref_protected'],
      ['pipeline-id', 'pipeline_id'],
      ['job-id', 'job_id'],
      ['user-login', 'user_login'],
      ['environment', 'environment'],
    ]),
  }
}

/**
 * Kubernetes service-account tokens (sub system:serviceaccount:<ns>:<name>). The identity is
 * `<label>:serviceaccount:<ns>:<name>`, never the bare system: name: the token came from another
 * cluster's issuer, and must not become that cluster's own ServiceAccount here.
 */
function kubernetes(claims: Claims, label: string): MappedIdentity {
  const k8s = (claims['kubernetes.io'] ?? {}) as {
    namespace?: unknown
    serviceaccount?: { name?: unknown }
    pod?: { name?: unknown }
  }
  const sub = need(claims, 'sub', 'Kubernetes service-account')
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub)
  if (!m) throw new MappingError(`the Kubernetes token's subject is not a service account`)
  const [, namespace, name] = m as unknown as [string, string, string]
  if (
    (k8s.namespace !== undefined && k8s.namespace !== namespace) ||
    (k8s.serviceaccount?.name !== undefined && k8s.serviceaccount.name !== name)
  ) {
    throw new MappingError("the Kubernetes token's subject and kubernetes.io claims disagree")
  }
  const extra: Record<string, string[]> = {
    [provenance('namespace')]: [namespace],
    [provenance('serviceaccount')]: [name],
  }
  const pod = str(k8s.pod?.name)
  if (pod) extra[provenance('pod-name')] = [pod]
  return {
    name: `${label}:serviceaccount:${namespace}:${name}`,
    groups: [`${label}-namespace:${namespace}`],
    extra,
  }
}

function fromMappings(claims: Claims, config: OidcConfig): MappedIdentity {
  const m = config.claimMappings ?? {}
  const usernameClaim = m.username?.claim ?? 'sub'
  const username = str(claims[usernameClaim])
  if (!username)
    throw new MappingError(`the token has no '${usernameClaim}' claim to name the caller`)
  const prefix = m.username?.prefix ?? (config.preset ? '' : `${config.issuer}#`)
  let groups: string[] = []
  if (m.groups) {
    const raw = claims[m.groups.claim]
    const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]
    groups = list
      .map(str)
      .filter((g): g is string => g !== undefined)
      .map((g) => m.groups!.prefix + g)
  }
  const extra: Record<string, string[]> = {}
  for (const [key, claim] of Object.entries(m.extra ?? {})) {
    const v = str(claims[claim])
    if (v !== undefined)
      extra[key.startsWith(PROVENANCE_PREFIX) ? key : PROVENANCE_PREFIX + key] = [v]
  }
  return { name: prefix + username, groups, extra }
}

export function mapClaims(claims: Claims, config: OidcConfig): MappedIdentity {
  let mapped: MappedIdentity
  if (config.claimMappings?.username) mapped = fromMappings(claims, config)
  else if (config.preset === 'github-actions') mapped = githubActions(claims)
  else if (config.preset === 'gitlab-ci') mapped = gitlabCi(claims)
  else if (config.preset === 'kubernetes') mapped = kubernetes(claims, config.name ?? 'k8s')
  else mapped = fromMappings(claims, config)
  if (config.claimMappings && !config.claimMappings.username) {
    // Groups or extras added on top of a preset.
    const extra = fromMappings({ ...claims, sub: claims['sub'] ?? 'x' }, config)
    mapped = {
      name: mapped.name,
      groups: [...mapped.groups, ...extra.groups],
      extra: { ...mapped.extra, ...extra.extra },
    }
  }
  // The cluster sees the name in an Impersonate-User header: visible ASCII only (a U+0000 or
  // a line break in a claim must not become a 500 upstream, or a header injection).
  if (!/^[\x20-\x7e]{1,1024}$/.test(mapped.name))
    throw new MappingError(
      'the identity name mapped from the token has characters a Kubernetes user name cannot carry (control or non-ASCII characters), or is longer than 1024',
    )
  const sub = str(claims['sub'])
  mapped.extra[provenance('issuer')] = [String(claims['iss'])]
  if (sub) mapped.extra[provenance('subject')] = [sub]
  return mapped
}
