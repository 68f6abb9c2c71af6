// Where in a document a validation issue is: `clusters[0].credential.tokenFile`.
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`
  return out || '(top level)'
}
