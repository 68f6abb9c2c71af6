// The API server's own audit log, read as an oracle of what reached the cluster and as whom.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export interface AuditEvent {
  auditID: string
  stage: string
  verb: string
  requestURI: string
  user: { username: string; groups?: string[]; extra?: Record<string, string[]> }
  impersonatedUser?: { username: string; groups?: string[]; extra?: Record<string, string[]> }
  objectRef?: {
    resource?: string
    namespace?: string
    name?: string
    apiGroup?: string
    apiVersion?: string
    subresource?: string
  }
  responseStatus?: { code?: number }
  userAgent?: string
}

export function readAuditEvents(path: string): AuditEvent[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  const out: AuditEvent[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    try {
      out.push(JSON.parse(line) as AuditEvent)
    } catch {
      /* a line being written right now */
    }
  }
  return out
}

/** Polls the audit log until an event matches (the log backend writes after the response). */
export async function waitForAuditEvent(
  path: string,
  match: (e: AuditEvent) => boolean,
  timeoutMs = 10_000,
): Promise<AuditEvent> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const hit = readAuditEvents(path).find(match)
    if (hit) return hit
    if (Date.now() > deadline)
      throw new Error(`no matching audit event in ${path} after ${timeoutMs} ms`)
    await sleep(100)
  }
}
