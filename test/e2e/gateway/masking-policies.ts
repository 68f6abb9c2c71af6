// The policies of the masking e2e tests: CI identities and client-node masked (partial and HMAC
// replacements in their own namespaces), a backup-restore identity unmasked.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SA_NAMESPACE } from './env.ts'

export const BACKUP = 'backup-restore'

export function policies(dir: string): string[] {
  const out = join(dir, 'masking-policies')
  mkdirSync(out, { recursive: true })
  writeFileSync(
    join(out, 'masked.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-masked
spec:
  subjects:
    - name: 'github:*'
    - name: 'k8s:serviceaccount:${SA_NAMESPACE}:client-node'
  audit: requestResponse
  rules:
    - name: partial-cards
      action: allow
      verbs: ['*']
      namespaces: ['gw-mask-partial-*']
      mask: { replacement: partial }
    - name: hashed
      action: allow
      verbs: ['*']
      namespaces: ['gw-mask-hmac-*']
      mask: { replacement: hmac }
    - name: everything
      action: allow
      verbs: ['*']
`,
  )
  writeFileSync(
    join(out, 'backup.yaml'),
    `apiVersion: gatehouse.dev/v1alpha1
kind: Policy
metadata:
  name: e2e-backup-restore
spec:
  subjects:
    - name: 'k8s:serviceaccount:${SA_NAMESPACE}:${BACKUP}'
  audit: requestResponse
  mask: { enabled: false }
  rules:
    - name: everything
      action: allow
      verbs: ['*']
`,
  )
  return [out]
}
