// `collections: filter`: what deny and approve rules name, taken out of a list or watch that
// returns it among other objects. An object is left out when any filter matches its namespace
// and name (a Namespace's namespace is its own name). Items whose metadata is missing are left
// out: what cannot be told apart is not served.
import type { CollectionFilter } from './decision.ts'

interface Meta {
  kind?: unknown
  metadata?: { name?: unknown; namespace?: unknown }
}

export function collectionDropper(
  filters: readonly CollectionFilter[],
  resource: string,
): (object: unknown) => boolean {
  return (object) => {
    const o = object as Meta | null | undefined
    // an item without metadata (a Table row asked for with includeObject=None) cannot be told
    // apart: it is left out (fail closed)
    if (!o || typeof o.metadata !== 'object' || o.metadata === null) return true
    const name = typeof o?.metadata?.name === 'string' ? o.metadata.name : ''
    const isNamespace = resource === 'namespaces' || o?.kind === 'Namespace'
    const ns =
      typeof o?.metadata?.namespace === 'string' && o.metadata.namespace !== ''
        ? o.metadata.namespace
        : isNamespace
          ? name
          : ''
    return filters.some(
      (f) => (!f.namespace || (ns !== '' && f.namespace(ns))) && (!f.name || f.name(name)),
    )
  }
}

/** `policy 'p', rule 'r'` of each filter, for the Warning. */
export function filterSources(filters: readonly CollectionFilter[]): string {
  return [...new Set(filters.map((f) => `policy '${f.policy}', rule '${f.rule}'`))].join('; ')
}
