// The audit trail: one record per request, written off the request path into the database.
export { auditQuerySchema, parseTime, type AuditQuery } from './query.ts'
export {
  RECORDED_CLAIMS,
  selectClaims,
  type ApprovalAuditLink,
  type ApprovalEvent,
  type AuditBody,
  type AuditRecord,
} from './record.ts'
export { AUDIT_MIGRATIONS, auditRepository, type AuditRepository } from './repository.ts'
export { AuditWriter, type AuditWriterOptions, type AuditWriterStats } from './writer.ts'
export { buildAuditRecord } from './build.ts'
export { AuditJournal, type AuditJournalOptions } from './journal.ts'
export { createRequestRecorder, type RequestRecorder } from './recorder.ts'
export { RefusalGovernor, boundRefusal, sourceKey, type RefusalOptions } from './refusals.ts'
export { quarantined } from './quarantine.ts'
