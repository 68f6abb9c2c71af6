// Request bodies decoded once, by the strictest reading: a body is accepted only when every
// decoder the API server might use (encoding/json and sigs.k8s.io/json for JSON; sigs.k8s.io/yaml
// over goyaml v2 or v3 for YAML) gives the same object, and that object is what policy,
// approvals, masking and the audit record see. Anything a decoder could read two ways is
// refused with the reason (400), never resolved one way here and another way upstream:
//
//   {"labels":{"a":"x"},"labels":{"b":"y"}}  duplicate key (Go merges the two objects)
//   labels: {<<: *base}                       YAML merge key and alias (goyaml expands them)
//   hostNetwork: yes                          YAML 1.1 boolean in goyaml v2, a string in v3
//   replicas: 0x10, 1_000, 0777, .inf         number spellings the YAML versions disagree on
//   {"n": 9007199254740993}                   an integer JavaScript cannot hold exactly
//   [[[[…]]]] deeper than MAX_BODY_DEPTH      bounded before any recursive decoder runs
//
// Protobuf and CBOR bodies are not decoded (`undecoded`): conditions that need their object get
// it from the API server's dry run, or fail closed.
import { isAlias, isMap, isScalar, isSeq, Lexer, parseAllDocuments, type Node } from 'yaml'

/** Deeper bodies are refused: Kubernetes objects, CRD schemas included, nest far less. */
export const MAX_BODY_DEPTH = 100

/**
 * YAML that is not JSON is decoded at about 1 MB/s (the `yaml` package, measured): larger
 * bodies are refused (413) so one caller cannot hold the event loop for seconds. kubectl's
 * server-side apply sends JSON as YAML, which takes the JSON path at any size.
 */
export const MAX_YAML_BODY_BYTES = 1024 * 1024

export type BodyFormat = 'json' | 'yaml'

/** A decoded body, or why Gatehouse did not decode it: what every later stage reads. */
export type RequestObject = { value: unknown; format: BodyFormat } | { unavailable: string }

export type BodyDecoding =
  | { ok: true; format: BodyFormat; value: unknown }
  /** Not a format Gatehouse decodes (protobuf, CBOR, none declared): the bytes go on as sent. */
  | { ok: false; undecoded: string }
  /** A body Gatehouse refuses: the reason is for the caller (400, or 413 for `tooLarge`). */
  | { ok: false; refused: string; tooLarge?: true }

const JSON_TYPES = new Set([
  'application/json',
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
])
const YAML_TYPES = new Set(['application/yaml', 'application/apply-patch+yaml'])

/** The media type without parameters, lower-case (Go's mime.ParseMediaType). */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase()
}

class Refusal extends Error {}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Decodes a request body by its declared media type. */
export function decodeBody(body: Buffer, contentType: string | undefined): BodyDecoding {
  const type = mediaTypeOf(contentType)
  const format: BodyFormat | undefined = JSON_TYPES.has(type)
    ? 'json'
    : YAML_TYPES.has(type)
      ? 'yaml'
      : undefined
  if (!format)
    return {
      ok: false,
      undecoded: `the body is ${type || 'of no declared type'}, not JSON or YAML (kubectl and client-go send protobuf for built-in types)`,
    }
  let text: string
  try {
    text = UTF8.decode(body)
  } catch {
    // Go keeps invalid UTF-8 as U+FFFD in some paths and refuses it in others: refuse it here.
    return { ok: false, refused: `the ${type} body is not valid UTF-8` }
  }
  try {
    let value: unknown = NOT_JSON
    if (format === 'json') value = decodeJson(text)
    else if (looksLikeJson(text)) value = jsonOrNot(text)
    if (value === NOT_JSON) {
      if (body.length > MAX_YAML_BODY_BYTES)
        return {
          ok: false,
          refused: `the ${type} body of ${body.length} bytes is larger than ${MAX_YAML_BODY_BYTES} bytes, the most Gatehouse decodes as YAML (send JSON, which is valid YAML)`,
          tooLarge: true,
        }
      value = decodeYaml(text)
    }
    return { ok: true, format, value }
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, refused: `the ${type} body ${e.message}` }
    if (e instanceof RangeError || /call stack/i.test((e as Error).message))
      return { ok: false, refused: `the ${type} body is nested too deeply` }
    return {
      ok: false,
      refused: `the ${type} body does not parse: ${(e as Error).message.split('\n')[0]}`,
    }
  }
}

// ---- JSON ----

/**
 * A YAML body that is a JSON object or array is read as JSON: JSON is YAML, and for JSON texts
 * (quoted keys and strings, JSON numbers and literals) goyaml gives the same values. Anything
 * that is not strict JSON after all is refused rather than re-read as YAML.
 */
function looksLikeJson(text: string): boolean {
  return /^\s*[{[]/.test(text)
}

const NOT_JSON = Symbol('not JSON')

/** The JSON reading of a YAML body, or NOT_JSON when it does not parse as JSON at all. */
function jsonOrNot(text: string): unknown {
  try {
    return decodeJson(text)
  } catch (e) {
    if (e instanceof SyntaxError) return NOT_JSON
    throw e
  }
}

/**
 * One pass over a JSON text that JSON.parse accepted: nesting past `limit`, or an object with a
 * key twice (after unescaping: `"\u0061"` is `"a"`). JSON.parse silently keeps the last of
 * duplicates; Go's decoders merge objects or keep the last, field by field. Written here, not
 * taken from a library: lossless-json, which reports duplicates, took 125 ms for an 800 KB
 * ConfigMap where this scan and JSON.parse take 3 ms (measured, bench/writes.ts).
 */
function jsonStructureProblem(text: string, limit: number): string | undefined {
  const stack: (Set<string> | null)[] = [] // the keys seen per object; null for arrays
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      const start = i
      let escaped = false
      for (i++; text.charCodeAt(i) !== 0x22; i++)
        if (text.charCodeAt(i) === 0x5c) {
          escaped = true
          i++
        }
      const keys = stack[stack.length - 1]
      if (expectKey && keys) {
        const key = escaped
          ? (JSON.parse(text.slice(start, i + 1)) as string)
          : text.slice(start + 1, i)
        if (keys.has(key))
          return `has the key '${key.slice(0, 60)}' twice in one object: the API server would merge or pick differently; send each key once`
        keys.add(key)
        expectKey = false
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (stack.push(c === 0x7b ? new Set() : null) > limit)
        return `is nested deeper than ${limit} levels`
      expectKey = c === 0x7b
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop()
      expectKey = false
    } else if (c === 0x2c) expectKey = stack[stack.length - 1] != null
  }
  return undefined
}

/** The deepest nesting of `[`/`{` outside strings, stopping early past the limit. */
function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/**
 * JSON numbers as Go reads them: integers exactly (int64), others as float64. JavaScript holds
 * both the same way except integers beyond 2^53, which are refused rather than rounded.
 */
function jsonNumber(text: string): number {
  const n = Number(text)
  if (!Number.isFinite(n)) throw new Refusal(`has a number out of range: ${text.slice(0, 40)}`)
  if (/^-?\d+$/.test(text) && !Number.isSafeInteger(n))
    throw new Refusal(
      `has an integer beyond 2^53 that JavaScript cannot hold exactly: ${text.slice(0, 40)}`,
    )
  return n
}

function decodeJson(text: string): unknown {
  // the depth first: JSON.parse recurses
  if (jsonDepthExceeds(text, MAX_BODY_DEPTH))
    throw new Refusal(`is nested deeper than ${MAX_BODY_DEPTH} levels`)
  const value = JSON.parse(text) as unknown
  const problem = jsonStructureProblem(text, MAX_BODY_DEPTH)
  if (problem) throw new Refusal(problem)
  checkValues(value)
  return value
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Strings with lone UTF-16 surrogates (`"\ud800"`) become U+FFFD in Go; numbers JavaScript
 * cannot hold as Go does (non-finite, integers from 2^53 on, however spelt) are refused.
 */
function checkValues(v: unknown): void {
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v))
      throw new Refusal('has a string with a lone UTF-16 surrogate escape')
  } else if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Refusal('has a number out of range')
    if (Number.isInteger(v) && !Number.isSafeInteger(v))
      throw new Refusal(`has an integer beyond 2^53 that JavaScript cannot hold exactly: ${v}`)
  } else if (Array.isArray(v)) for (const x of v) checkValues(x)
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      checkValues(k)
      checkValues(x)
    }
}

// ---- YAML ----

/**
 * Plain scalars one YAML decoder could read as something other than a string: null, booleans
 * (YAML 1.1's yes/no/on/off/y/n too), numbers in any spelling (hex, octal, binary,
 * underscores, sexagesimal, .inf/.nan), timestamps, the merge key `<<` and the value key `=`.
 */
const MAYBE_TYPED =
  /^(?:~|null|Null|NULL|[yY]|[nN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|<<|=|[-+]?[0-9_][0-9_:]*|[-+]?0[xXoObB][0-9a-fA-F_]*|[-+]?(\.[0-9_]+|[0-9][0-9_:]*\.[0-9_]*)([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|\d{4}-\d\d?-\d\d?([Tt ].*)?)$/

const NULLS = new Set(['~', 'null', 'Null', 'NULL'])
const TRUES = new Set(['true', 'True', 'TRUE'])
const FALSES = new Set(['false', 'False', 'FALSE'])
/** Integers and floats every decoder reads alike (YAML 1.2 core and goyaml v2/v3). */
const PLAIN_INT = /^[-+]?(0|[1-9][0-9]*)$/
const PLAIN_FLOAT = /^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/

function plainScalar(source: string, where: string): unknown {
  if (source === '' || NULLS.has(source)) return null
  if (TRUES.has(source)) return true
  if (FALSES.has(source)) return false
  if (PLAIN_INT.test(source) || PLAIN_FLOAT.test(source)) return jsonNumber(source)
  if (MAYBE_TYPED.test(source))
    throw new Refusal(
      `has the unquoted value '${source.slice(0, 40)}'${where}, which YAML decoders read differently (string, boolean, number or timestamp); quote it`,
    )
  return source
}

function at(path: readonly string[]): string {
  return path.length ? ` at ${path.join('.')}` : ''
}

function yamlValue(node: Node | null, path: string[], depth: number): unknown {
  if (depth > MAX_BODY_DEPTH) throw new Refusal(`is nested deeper than ${MAX_BODY_DEPTH} levels`)
  if (node === null) return null
  if (isAlias(node))
    throw new Refusal(
      `uses the alias *${node.source}${at(path)}; aliases and anchors are not accepted, write the value out`,
    )
  if (node.tag !== undefined)
    throw new Refusal(`uses the explicit tag ${node.tag}${at(path)}; tags are not accepted`)
  if (isScalar(node)) {
    if (node.type === 'PLAIN') return plainScalar(String(node.value), at(path))
    return String(node.value)
  }
  if (isSeq(node))
    return node.items.map((item, i) =>
      yamlValue(item as Node | null, [...path, `[${i}]`], depth + 1),
    )
  if (isMap(node)) {
    const out: Record<string, unknown> = {}
    for (const pair of node.items) {
      const key = pair.key as Node | null
      if (!isScalar(key) || key.tag !== undefined)
        throw new Refusal(`has a mapping key that is not a plain string${at(path)}`)
      const name = String(key.value)
      if (name === '<<')
        throw new Refusal(
          `uses the merge key '<<'${at(path)}; merge keys are not accepted, write the keys out`,
        )
      if (key.type === 'PLAIN' && (name === '' || MAYBE_TYPED.test(name)))
        throw new Refusal(
          `has the unquoted key '${name.slice(0, 40)}'${at(path)}, which YAML decoders read as a non-string; quote it`,
        )
      if (Object.hasOwn(out, name))
        throw new Refusal(
          `has the key '${name.slice(0, 60)}' twice${at(path)}: the API server would keep one of them; send each key once`,
        )
      Object.defineProperty(out, name, {
        value: yamlValue(pair.value as Node | null, [...path, name], depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  }
  throw new Refusal(`has a node Gatehouse does not decode${at(path)}`)
}

/**
 * Flow collections (`[[[[…`) nested past the limit, found by the lexer (linear) before the
 * parser runs: the parser's time grows with the square of the flow depth (3 MB of `[`: 30 s).
 */
function yamlFlowDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > limit) return true
    } else if (token === ']' || token === '}') depth--
  }
  return false
}

function decodeYaml(text: string): unknown {
  if (yamlFlowDepthExceeds(text, MAX_BODY_DEPTH))
    throw new Refusal(`is nested deeper than ${MAX_BODY_DEPTH} levels`)
  // failsafe: every scalar is a string; plainScalar() decides what it means
  const docs = parseAllDocuments(text, {
    schema: 'failsafe',
    uniqueKeys: false,
    merge: false,
    strict: true,
    prettyErrors: false,
  })
  if (!Array.isArray(docs)) throw new Refusal('is an empty YAML stream')
  if (docs.length !== 1)
    throw new Refusal(
      `holds ${docs.length} YAML documents; the API server reads one, so send exactly one`,
    )
  const doc = docs[0]!
  if (doc.errors.length) throw new Error(doc.errors[0]!.message)
  if (doc.directives.yaml.explicit || doc.directives.tags['!!'] !== 'tag:yaml.org,2002:')
    throw new Refusal('has a YAML directive; directives are not accepted')
  const value = yamlValue(doc.contents, [], 0)
  checkValues(value)
  return value
}

/** The request object of a body: decoded (strictly), or why it is not; no body is `null`. */
export function requestObjectOf(
  body: Buffer | undefined,
  contentType: string | undefined,
): RequestObject {
  if (!body?.length) return { value: null, format: 'json' }
  const d = decodeBody(body, contentType)
  if (d.ok) return { value: d.value, format: d.format }
  return { unavailable: 'undecoded' in d ? d.undecoded : d.refused }
}
