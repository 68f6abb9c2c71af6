// The stand-in for a record the store refused for its content (a value too long for an index,
// bytes it cannot hold): every field the store indexes or a reader filters on kept as bounded
// printable ASCII, the original kept as base64 (bounded, with its SHA-256), and the record
// flagged. One poisoned record is stored this way instead of blocking every record behind it.
import { createHash } from 'node:crypto'
import type { AuditRecord } from './record.ts'
import { boundedAscii } from './bounded.ts'

/** The most of a refused record's JSON kept in its stand-in (base64 of the first bytes). */
export const QUARANTINE_ORIGINAL_BYTES = 64 * 1024
const FIELD_CHARS = 512

/** `original`: the bytes to keep (default: the record's JSON). */
export function quarantined(
  record: AuditRecord,
  reason: string,
  original: Buffer = Buffer.from(safeJson(record)),
): AuditRecord {
  const json = original
  const a = (s: string): string => boundedAscii(s, FIELD_CHARS)
  const r = record.request
  return {
    id: a(String(record.id)),
    time: Number.isNaN(Date.parse(record.time)) ? new Date().toISOString() : record.time,
    durationMs: Number(record.durationMs) || 0,
    cluster: record.cluster === null ? null : a(String(record.cluster)),
    identity: record.identity
      ? {
          name: a(String(record.identity.name)),
          groups: [],
          method: a(String(record.identity.method)),
          claims: {},
        }
      : null,
    source: { address: a(String(record.source?.address ?? '')) },
    request: r
      ? {
          method: a(r.method),
          target: a(r.target),
          isResourceRequest: r.isResourceRequest,
          verb: a(r.verb),
          apiGroup: a(r.apiGroup),
          apiVersion: a(r.apiVersion),
          resource: a(r.resource),
          subresource: a(r.subresource),
          namespace: a(r.namespace),
          name: a(r.name),
        }
      : null,
    decision: record.decision
      ? {
          action: a(record.decision.action),
          rule: a(record.decision.rule),
          auditLevel: record.decision.auditLevel,
        }
      : null,
    principal: record.principal
      ? { user: a(String(record.principal.user)), groups: [], via: record.principal.via }
      : null,
    response: {
      code: Number(record.response?.code) || 0,
      requestBytes: Number(record.response?.requestBytes) || 0,
      responseBytes: Number(record.response?.responseBytes) || 0,
    },
    ...(record.error
      ? { error: { code: a(record.error.code), message: a(record.error.message) } }
      : {}),
    storage: {
      escaped: true,
      reason: a(reason),
      originalBytes: json.length,
      originalSha256: createHash('sha256').update(json).digest('hex'),
      original: json.subarray(0, QUARANTINE_ORIGINAL_BYTES).toString('base64'),
    },
  }
}

function safeJson(record: unknown): string {
  try {
    return JSON.stringify(record)
  } catch (e) {
    return JSON.stringify({ unserialisable: String(e) })
  }
}
