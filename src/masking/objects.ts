// Structural masking of decoded Kubernetes objects: rules by kind, applied to the object itself,
// never to the URL, so every shape that carries the object is covered: single objects, lists,
// Tables (cells and embedded objects), watch events. (Wiring into responses is the masking
// issue's next part; this module is pure: object in, masked copy and count out.)
//
// - Secret: every `data` value becomes valid base64 of a placeholder (clients decode it without
//   breaking), every `stringData` value a placeholder;
// - the `kubectl.kubernetes.io/last-applied-configuration` annotation is parsed and masked with
//   the same rules (it holds the whole applied Secret);
// - `env[].value` whose name looks secret (PASSWORD, TOKEN, KEY, SECRET...), in any pod spec or
//   template; ConfigMap keys that look secret;
// - every other string value goes through the text detectors (cards, keys, tokens...).
import { detectorSet, type DetectorSet } from './detectors.ts'
import { maskText, type Replacement } from './text.ts'

export interface ObjectMaskingRules {
  /** Names of env vars and ConfigMap keys whose values are masked whatever they hold. */
  sensitiveNames: RegExp
  detectors: DetectorSet
  replacement: Replacement
  /** Fields masked in objects of a kind, whatever they hold (gatehouse.yaml masking.fields). */
  fields: readonly FieldRule[]
}

/** Compiled `masking.fields` entry: `spec.users[*].token` → ['spec', 'users', '[*]', 'token']. */
export interface FieldRule {
  apiGroup: string
  kind: string
  paths: readonly (readonly string[])[]
}

export function compileFieldRules(
  fields: readonly { apiGroup: string; kind: string; paths: readonly string[] }[],
): FieldRule[] {
  return fields.map((f) => ({
    apiGroup: f.apiGroup,
    kind: f.kind,
    paths: f.paths.map((p) =>
      p.split('.').flatMap((seg) => (seg.endsWith('[*]') ? [seg.slice(0, -3), '[*]'] : [seg])),
    ),
  }))
}

export const DEFAULT_SENSITIVE_NAMES =
  /(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)/i

export function defaultObjectRules(): ObjectMaskingRules {
  return {
    sensitiveNames: DEFAULT_SENSITIVE_NAMES,
    detectors: detectorSet(),
    replacement: { kind: 'placeholder' },
    fields: [],
  }
}

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'
const SECRET_PLACEHOLDER = '[MASKED:secret]'
const SECRET_PLACEHOLDER_B64 = Buffer.from(SECRET_PLACEHOLDER).toString('base64')

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** An own property, also for a key named `__proto__` (JSON.parse makes those own properties). */
function put(o: Record<string, Json>, k: string, v: Json): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Masks a decoded response body (object, list, Table or watch event); returns a masked copy. */
export function maskKubernetesJson(
  value: unknown,
  rules: ObjectMaskingRules = defaultObjectRules(),
  /**
   * The type of objects that do not name their own: items of a typed list (the API server
   * leaves out their kind and apiVersion), or what the request asked for.
   */
  typeHint?: TypeHint,
): { value: unknown; masked: number } {
  const counter = { n: 0 }
  const out = maskAny(value as Json, rules, counter, undefined, typeHint)
  return { value: out, masked: counter.n }
}

export interface TypeHint {
  kind: string
  apiVersion?: string
}

/** The type list items inherit: `SecretList` → `Secret` (a generic `List`'s items name theirs). */
export function itemTypeOf(list: { kind?: unknown; apiVersion?: unknown }): TypeHint | undefined {
  const kind = typeof list.kind === 'string' ? list.kind : ''
  if (!kind.endsWith('List') || kind === 'List') return undefined
  return {
    kind: kind.slice(0, -4),
    ...(typeof list.apiVersion === 'string' ? { apiVersion: list.apiVersion } : {}),
  }
}

function groupOf(apiVersion: string | undefined): string {
  if (!apiVersion) return ''
  const slash = apiVersion.indexOf('/')
  return slash < 0 ? '' : apiVersion.slice(0, slash)
}

const FIELD_PLACEHOLDER = '[MASKED:field]'

/** Masks every string at `path` (and under it) in place; counts what it replaced. */
function maskPath(v: Json, path: readonly string[], i: number, counter: { n: number }): Json {
  if (i === path.length) return maskAllStrings(v, counter)
  const seg = path[i]!
  if (seg === '[*]') {
    if (!Array.isArray(v)) return v
    for (let j = 0; j < v.length; j++) v[j] = maskPath(v[j]!, path, i + 1, counter)
    return v
  }
  if (!isObject(v)) return v
  for (const k of seg === '*' ? Object.keys(v) : Object.hasOwn(v, seg) ? [seg] : [])
    put(v, k, maskPath(v[k]!, path, i + 1, counter))
  return v
}

function maskAllStrings(v: Json, counter: { n: number }): Json {
  if (typeof v === 'string') {
    if (v === '' || /^\[MASKED:[^\]]*\]$/.test(v)) return v
    counter.n++
    return FIELD_PLACEHOLDER
  }
  if (Array.isArray(v)) return v.map((x) => maskAllStrings(x, counter))
  if (!isObject(v)) return v
  const out: Record<string, Json> = {}
  for (const [k, x] of Object.entries(v)) put(out, k, maskAllStrings(x, counter))
  return out
}

function maskString(s: string, rules: ObjectMaskingRules, counter: { n: number }): string {
  const r = maskText(s, { detectors: rules.detectors, replacement: rules.replacement })
  for (const n of Object.values(r.counts)) counter.n += n
  return r.text
}

/** `kind` of the enclosing object, so `data` means what it means for that kind. */
function maskAny(
  v: Json,
  rules: ObjectMaskingRules,
  counter: { n: number },
  key: string | undefined,
  hint?: TypeHint,
): Json {
  if (typeof v === 'string') return maskString(v, rules, counter)
  if (Array.isArray(v)) {
    if (key === 'env') return v.map((e) => maskEnv(e, rules, counter))
    return v.map((x) => maskAny(x, rules, counter, undefined, hint))
  }
  if (!isObject(v)) return v
  const kind = typeof v['kind'] === 'string' ? v['kind'] : hint?.kind
  const apiVersion = typeof v['apiVersion'] === 'string' ? v['apiVersion'] : hint?.apiVersion
  const items = itemTypeOf({ kind, apiVersion })
  const out: Record<string, Json> = {}
  for (const [k, x] of Object.entries(v)) {
    if (k === 'items' && items && Array.isArray(x)) {
      put(
        out,
        k,
        x.map((item) => maskAny(item, rules, counter, undefined, items)),
      )
      continue
    }
    if (kind === 'Secret' && (k === 'data' || k === 'stringData') && isObject(x)) {
      put(
        out,
        k,
        Object.fromEntries(
          Object.keys(x).map((name) => {
            counter.n++
            return [name, k === 'data' ? SECRET_PLACEHOLDER_B64 : SECRET_PLACEHOLDER]
          }),
        ),
      )
    } else if (kind === 'ConfigMap' && k === 'data' && isObject(x)) {
      put(
        out,
        k,
        Object.fromEntries(
          Object.entries(x).map(([name, value]) => {
            if (rules.sensitiveNames.test(name) && typeof value === 'string' && value !== '') {
              counter.n++
              return [name, '[MASKED:configmap-key]']
            }
            return [name, maskAny(value, rules, counter, name)]
          }),
        ),
      )
    } else if (k === 'metadata' && isObject(x)) {
      put(out, k, maskMetadata(x, rules, counter))
    } else put(out, k, maskAny(x, rules, counter, k))
  }
  if (kind && rules.fields.length) {
    const group = groupOf(apiVersion)
    for (const f of rules.fields)
      if (f.kind === kind && f.apiGroup === group)
        for (const path of f.paths) maskPath(out, path, 0, counter)
  }
  return out
}

function maskEnv(e: Json, rules: ObjectMaskingRules, counter: { n: number }): Json {
  if (!isObject(e)) return maskAny(e, rules, counter, undefined)
  const name = typeof e['name'] === 'string' ? e['name'] : ''
  if (typeof e['value'] !== 'string' || e['value'] === '' || !rules.sensitiveNames.test(name))
    return maskAny(e, rules, counter, undefined)
  const rest: Record<string, Json> = { ...e }
  delete rest['value']
  counter.n++
  return {
    ...(maskAny(rest, rules, counter, undefined) as Record<string, Json>),
    value: '[MASKED:env]',
  }
}

function maskMetadata(
  m: Record<string, Json>,
  rules: ObjectMaskingRules,
  counter: { n: number },
): Record<string, Json> {
  const out = maskAny({ ...m, annotations: null }, rules, counter, 'metadata') as Record<
    string,
    Json
  >
  const annotations = m['annotations']
  if (!isObject(annotations)) {
    if (annotations === undefined) delete out['annotations']
    else out['annotations'] = annotations
    return out
  }
  const masked: Record<string, Json> = {}
  for (const [k, a] of Object.entries(annotations)) {
    if (k === LAST_APPLIED && typeof a === 'string') {
      let parsed: Json
      try {
        parsed = JSON.parse(a) as Json
      } catch {
        // not JSON: masked as text, and wholly if it mentions a Secret (fail closed)
        if (/"?kind"?\s*:\s*"?Secret/.test(a)) {
          counter.n++
          put(masked, k, '[MASKED:last-applied-configuration]')
        } else put(masked, k, maskString(a, rules, counter))
        continue
      }
      put(masked, k, JSON.stringify(maskAny(parsed, rules, counter, undefined)) + '\n')
    } else put(masked, k, maskAny(a, rules, counter, k))
  }
  out['annotations'] = masked
  return out
}
