// Refusals are cheap to keep: a request refused before it was forwarded (no credentials, a bad
// token, a policy denial, a flood) gets a record whose target, headers and claims are bounded
// (a hash of anything longer); past audit.refusals.recordsPerSource refusals from one source in
// a window, and past maxRecordsPerWindow across all sources, refusals are counted into one
// summary record per source and window instead; past limitPerSource, the source's requests
// without credentials are answered 429 until the window ends. The "source" of an authenticated
// caller's refusal is its identity (`identity:<name>`), of any other the address (IPv6: /64). So a flood costs the store at most maxRecordsPerWindow bounded records
// plus one summary per source each window, whatever the attacker sends (docs/audit.md).
import { randomUUID } from 'node:crypto'
import { isIPv6 } from 'node:net'
import type { AuditRecord } from './record.ts'
import { bounded } from './bounded.ts'

export interface RefusalOptions {
  windowSeconds: number
  recordsPerSource: number
  maxRecordsPerWindow: number
  /** 0: no limit. */
  limitPerSource: number
  maxFieldChars: number
}

/** Sources tracked per window; refusals from further sources share one summary ('*'). */
const MAX_SOURCES = 1000
/** Groups kept on a refusal's record (the rest are what the token said, not evidence). */
const MAX_GROUPS = 8
/** Distinct targets named in a summary (bounded, hashed when long). */
const SUMMARY_TARGETS = 5

interface SourceWindow {
  refusals: number
  recorded: number
  summarised: number
  byCode: Record<string, number>
  byStatus: Record<string, number>
  targets: Set<string>
}

/** The key refusals are counted under: the address, an IPv6 address's /64. */
export function sourceKey(address: string): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
  if (!isIPv6(a)) return a
  const [head = '', tail = ''] = a.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = a.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

export class RefusalGovernor {
  readonly #opts: RefusalOptions
  readonly #now: () => number
  #windowStart: number
  #sources = new Map<string, SourceWindow>()
  #recorded = 0

  constructor(opts: RefusalOptions, now: () => number = Date.now) {
    this.#opts = opts
    this.#now = now
    this.#windowStart = now()
  }

  /** Seconds until `address` may send again (429), or undefined when it may now. */
  retryAfter(address: string): number | undefined {
    if (!this.#opts.limitPerSource) return undefined
    this.#roll()
    const w = this.#sources.get(this.#keyOf(address, false))
    if (!w || w.refusals < this.#opts.limitPerSource) return undefined
    const left = this.#windowStart + this.#opts.windowSeconds * 1000 - this.#now()
    return Math.max(1, Math.ceil(left / 1000))
  }

  /**
   * The record to store for a refused request (bounded), or undefined when it is counted into
   * its source's summary instead (takeSummaries).
   */
  admit(record: AuditRecord): AuditRecord | undefined {
    // A held request's refusal (approval pending, denied, expired) is part of its approval's
    // trail: always recorded whole (approvals are created at the pace people decide).
    if (record.approval) return record
    this.#roll()
    const w = this.#window(
      record.identity
        ? this.#keyOf(`identity:${record.identity.name}`, true, true)
        : this.#keyOf(record.source.address, true),
    )
    w.refusals++
    const status = String(record.response.code)
    if (
      w.recorded < this.#opts.recordsPerSource &&
      this.#recorded < this.#opts.maxRecordsPerWindow
    ) {
      w.recorded++
      this.#recorded++
      return boundRefusal(record, this.#opts.maxFieldChars)
    }
    w.summarised++
    const code = record.error?.code ?? 'none'
    w.byCode[code] = (w.byCode[code] ?? 0) + 1
    w.byStatus[status] = (w.byStatus[status] ?? 0) + 1
    if (w.targets.size < SUMMARY_TARGETS && record.request)
      w.targets.add(bounded(record.request.target, 200))
    return undefined
  }

  /** Summary records of the windows that ended, until taken. */
  readonly #ended: AuditRecord[] = []

  /** Ends the current window now (shutdown): its summaries join `ended`. */
  endWindow(): void {
    this.#summarise()
    this.#windowStart = this.#now()
  }

  /** Takes the summaries waiting to be written. */
  takeSummaries(): AuditRecord[] {
    this.#roll()
    return this.#ended.splice(0)
  }

  #roll(): void {
    const now = this.#now()
    if (now - this.#windowStart < this.#opts.windowSeconds * 1000) return
    this.#summarise()
    this.#windowStart = now
  }

  #summarise(): void {
    const from = new Date(this.#windowStart).toISOString()
    const until = new Date(this.#now()).toISOString()
    for (const [source, w] of this.#sources) {
      if (!w.summarised) continue
      this.#ended.push(summaryRecord(source, w, from, until, this.#now() - this.#windowStart))
    }
    this.#sources = new Map()
    this.#recorded = 0
  }

  #keyOf(address: string, adding: boolean, literal = false): string {
    const key = literal ? bounded(address, 200) : sourceKey(address)
    if (this.#sources.has(key) || !adding || this.#sources.size < MAX_SOURCES) return key
    return '*'
  }

  #window(key: string): SourceWindow {
    let w = this.#sources.get(key)
    if (!w) {
      w = { refusals: 0, recorded: 0, summarised: 0, byCode: {}, byStatus: {}, targets: new Set() }
      this.#sources.set(key, w)
    }
    return w
  }
}

function summaryRecord(
  source: string,
  w: SourceWindow,
  from: string,
  until: string,
  durationMs: number,
): AuditRecord {
  const top = Object.entries(w.byStatus).sort((a, b) => b[1] - a[1])[0]
  return {
    id: `gatehouse-refusals-${randomUUID()}`,
    time: from,
    durationMs,
    cluster: null,
    identity: null,
    source: { address: source },
    request: null,
    decision: {
      action: 'deny',
      rule: 'builtin:refusal-summary',
      message: `${w.summarised} further refused request(s) from ${source} between ${from} and ${until}, counted here instead of recorded one by one (audit.refusals)`,
      auditLevel: 'metadata',
    },
    principal: null,
    response: { code: top ? Number(top[0]) : 0, requestBytes: 0, responseBytes: 0 },
    refusalSummary: {
      source,
      refusals: w.summarised,
      byCode: w.byCode,
      byStatus: w.byStatus,
      targets: [...w.targets],
      from,
      until,
    },
  }
}

/** A refusal's record with every attacker-sized field bounded (a hash of anything longer). */
export function boundRefusal(record: AuditRecord, max: number): AuditRecord {
  const b = (s: string): string => bounded(s, max)
  const out: AuditRecord = { ...record, source: { ...record.source } }
  for (const k of ['address', 'userAgent', 'kubectlCommand', 'kubectlSession'] as const) {
    const v = out.source[k]
    if (v !== undefined) out.source[k] = b(v)
  }
  if (record.request) {
    const r = { ...record.request }
    for (const k of [
      'method',
      'target',
      'verb',
      'apiGroup',
      'apiVersion',
      'resource',
      'subresource',
      'namespace',
      'name',
    ] as const)
      r[k] = b(r[k])
    out.request = r
  }
  if (record.identity) {
    let claims: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(record.identity.claims)) {
      const text = typeof v === 'string' ? v : JSON.stringify(v)
      claims[b(k)] = typeof v === 'string' || text.length > max ? b(text) : v
    }
    const all = JSON.stringify(claims)
    if (all.length > 4 * max) claims = { omitted: bounded(all, max) }
    out.identity = {
      ...record.identity,
      name: b(record.identity.name),
      groups: record.identity.groups.slice(0, MAX_GROUPS).map(b),
      claims,
      ...(record.identity.subject ? { subject: b(record.identity.subject) } : {}),
    }
  }
  if (record.decision?.message)
    out.decision = { ...record.decision, message: b(record.decision.message) }
  if (record.error) out.error = { code: record.error.code, message: b(record.error.message) }
  return out
}
