// Impersonate-* headers that make the cluster's RBAC and audit log see the real caller.
// Extra keys travel in header names, so characters outside the HTTP token set are
// percent-encoded; the API server decodes them (k8s.io/apiserver impersonation filter).
const TOKEN_CHAR = /[A-Za-z0-9!#$&'*+\-.^_`|~]/

const encodedKeys = new Map<string, string>()

export function encodeExtraKey(key: string): string {
  const known = encodedKeys.get(key)
  if (known !== undefined) return known
  let out = ''
  for (const ch of key.toLowerCase()) {
    out += TOKEN_CHAR.test(ch)
      ? ch
      : [...Buffer.from(ch, 'utf8')]
          .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
          .join('')
  }
  // Keys come from a fixed list (PROVENANCE_KEYS), so the memo stays small.
  if (encodedKeys.size < 1000) encodedKeys.set(key, out)
  return out
}

/** Header values must be visible ASCII and spaces; anything else is dropped, never injected. */
function safeValue(v: string): string | undefined {
  return /^[\x20-\x7e]*$/.test(v) && v.length <= 1024 ? v : undefined
}

export interface Principal {
  user: string
  groups: string[]
  extra: Record<string, string[]>
}

export function impersonationHeaders(p: Principal): string[] {
  const out: string[] = []
  const user = safeValue(p.user)
  if (!user) throw new TypeError('identity name is not a valid header value')
  out.push('Impersonate-User', user)
  for (const g of p.groups) {
    const v = safeValue(g)
    if (v) out.push('Impersonate-Group', v)
  }
  for (const [key, values] of Object.entries(p.extra)) {
    const name = `Impersonate-Extra-${encodeExtraKey(key)}`
    for (const value of values) {
      const v = safeValue(value)
      if (v !== undefined && v !== '') out.push(name, v)
    }
  }
  return out
}

const SERVICE_ACCOUNT_USER =
  /^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/
const ALLOWED_SYSTEM_GROUPS =
  /^system:(authenticated|serviceaccounts|serviceaccounts:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/

/**
 * Names the cluster reserves (`system:` users and groups such as system:masters or
 * system:kube-controller-manager) must never come out of a token's claims: an identity
 * provider that lets a user pick a group name would otherwise become cluster-admin.
 * Service-account users and groups are allowed (Kubernetes service-account tokens map to them).
 * Returns what is wrong, or undefined.
 */
export function reservedNameProblem(p: Pick<Principal, 'user' | 'groups'>): string | undefined {
  if (p.user.startsWith('system:') && !SERVICE_ACCOUNT_USER.test(p.user)) {
    return `identity name '${p.user}' is reserved by Kubernetes`
  }
  const group = p.groups.find((g) => g.startsWith('system:') && !ALLOWED_SYSTEM_GROUPS.test(g))
  return group ? `group '${group}' is reserved by Kubernetes` : undefined
}
