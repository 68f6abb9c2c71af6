// Who sees what: the masking a request's policy decision asks for, resolved against gatehouse.yaml
// `masking:` into everything the maskers need (detectors, replacement, structural rules). One
// profile per combination, built once. Callers see values masked unless the deciding rule (or its
// policy) says `mask: {enabled: false}`; what Gatehouse records is masked whatever policy says.
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { z } from 'zod'
import type { maskingSchema } from './config.ts'
import type { Identity } from '../authn/index.ts'
import { parseRequestInfo } from '../kube/request-info.ts'
import { ruleRef, type Decision } from '../policy/decision.ts'
import type { PolicySet } from '../policy/engine.ts'
import { detectorSet, type DetectorSet } from './detectors.ts'
import { compileFieldRules, DEFAULT_SENSITIVE_NAMES, type ObjectMaskingRules } from './objects.ts'
import type { Replacement } from './text.ts'

export type MaskingConfig = z.infer<typeof maskingSchema>
type ReplacementKind = MaskingConfig['replacement']

export interface MaskingProfile {
  readonly detectors: DetectorSet
  readonly replacement: Replacement
  readonly objects: ObjectMaskingRules
}

const MIN_HMAC_KEY_BYTES = 32

export class Masking {
  readonly #config: MaskingConfig
  readonly #dataDir: string
  readonly #detectors: DetectorSet
  readonly #sensitiveNames: RegExp
  readonly #fields: ObjectMaskingRules['fields']
  readonly #profiles = new Map<ReplacementKind, MaskingProfile>()
  #hmacKey: Buffer | undefined

  constructor(config: MaskingConfig, dataDir: string) {
    this.#config = config
    this.#dataDir = dataDir
    this.#detectors = detectorSet(config.detectors)
    this.#sensitiveNames = config.sensitiveNames
      ? new RegExp(config.sensitiveNames.map((p) => `(?:${p})`).join('|'), 'i')
      : DEFAULT_SENSITIVE_NAMES
    this.#fields = compileFieldRules(config.fields)
    // a configured key that cannot be read is a start-up error, not a surprise on first use
    if (config.hmacKeyFile || config.replacement === 'hmac') this.#key()
  }

  get maxObjectBytes(): number {
    return this.#config.maxObjectBytes
  }

  /** What Gatehouse records (audit bodies, recordings): always masked, configured replacement. */
  get forRecords(): MaskingProfile {
    return this.#profile(this.#config.replacement)
  }

  /** The masking of what the caller receives; undefined: unmasked (policy turned it off). */
  forDecision(decision: Decision | undefined): MaskingProfile | undefined {
    const m = decision?.obligations.mask
    if (m?.enabled === false) return undefined
    return this.#profile(m?.replacement ?? this.#config.replacement)
  }

  /** For the Warning header: the rule whose decision masked the response. */
  static source(decision: Decision | undefined): string {
    return decision ? ruleRef(decision) : 'Gatehouse default'
  }

  #profile(kind: ReplacementKind): MaskingProfile {
    let p = this.#profiles.get(kind)
    if (!p) {
      const replacement: Replacement =
        kind === 'hmac'
          ? { kind: 'hmac', key: this.#key() }
          : kind === 'partial'
            ? { kind: 'partial', keepLast: 4 }
            : { kind: 'placeholder' }
      p = {
        detectors: this.#detectors,
        replacement,
        objects: {
          detectors: this.#detectors,
          replacement,
          sensitiveNames: this.#sensitiveNames,
          fields: this.#fields,
        },
      }
      this.#profiles.set(kind, p)
    }
    return p
  }

  /** The HMAC key: the configured file, or one Gatehouse creates in its data directory. */
  #key(): Buffer {
    if (this.#hmacKey) return this.#hmacKey
    const file = this.#config.hmacKeyFile ?? join(this.#dataDir, 'masking-hmac.key')
    let key: Buffer
    try {
      key = readFileSync(file)
    } catch (e) {
      if (this.#config.hmacKeyFile || (e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`masking.hmacKeyFile: cannot read ${file}: ${(e as Error).message}`)
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
      key = randomBytes(MIN_HMAC_KEY_BYTES)
      try {
        writeFileSync(file, key, { mode: 0o600, flag: 'wx' })
      } catch (w) {
        // another replica sharing the directory made it first: use theirs
        if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w
        key = readFileSync(file)
      }
    }
    if (key.length < MIN_HMAC_KEY_BYTES)
      throw new Error(
        `masking.hmacKeyFile: ${file} holds ${key.length} bytes; expected ${MIN_HMAC_KEY_BYTES} or more`,
      )
    return (this.#hmacKey = key)
  }
}

/** The Secret type helm keeps its releases in (one Secret per release revision). */
export const HELM_RELEASE_TYPE = 'helm.sh/release.v1'

/**
 * helm reads its release Secrets back (list, upgrade, rollback, uninstall) and breaks on a
 * masked one. A release Secret goes out unmasked to an identity whose policy lets it write
 * that very Secret (update, in its namespace): a deployer who could overwrite the release
 * anyway. Everyone else gets it masked, with a Warning that says why helm cannot read it.
 * Every other Secret stays masked for everyone, helm's identity included.
 */
export function helmReleaseReader(
  policies: PolicySet,
  identity: Identity,
  cluster: string,
): { mayRead: (object: unknown) => boolean; isRelease: (object: unknown) => boolean } {
  const cache = new Map<string, boolean>()
  const isRelease = (object: unknown): boolean =>
    (object as { type?: unknown } | null)?.type === HELM_RELEASE_TYPE
  return {
    isRelease,
    mayRead(object) {
      if (!isRelease(object)) return false
      const meta = (object as { metadata?: { namespace?: unknown; name?: unknown } }).metadata
      const ns = typeof meta?.namespace === 'string' ? meta.namespace : ''
      const name = typeof meta?.name === 'string' ? meta.name : ''
      if (!/^[a-z0-9.-]{1,253}$/.test(ns) || !/^[a-z0-9.-]{1,253}$/.test(name)) return false
      const key = `${ns}/${name}`
      let ok = cache.get(key)
      if (ok === undefined) {
        const info = parseRequestInfo('PUT', `/api/v1/namespaces/${ns}/secrets/${name}`)
        ok =
          info.ok &&
          policies.evaluate({
            cluster,
            info: info.info,
            identity,
            // conditions on the written object cannot be known here: they fail, closed
            object: () => ({ unavailable: 'no write is being made' }),
          }).action === 'allow'
        if (cache.size < 1000) cache.set(key, ok)
      }
      return ok
    },
  }
}
