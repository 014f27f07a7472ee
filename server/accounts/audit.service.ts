import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { auditPage, journalAuditEntry } from './audit-index.ts';

export interface AuditRecord {
  /** The signed-in user's email, or "command line" / "setup link". */
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
  at: Date;
}

type AuditModels = Pick<Models, 'AuditEntry' | 'AuditChange' | 'ChangeStamp'>;

/** Adds one entry to the audit log, and to its index's journal (audit-index.ts). */
export async function recordAudit(models: AuditModels, record: AuditRecord): Promise<void> {
  const entry = await models.AuditEntry.create(entryOf(record));
  await journalAuditEntry(models, { _id: entry._id, at: record.at, action: record.action });
}

/**
 * Adds the entry of a decision stored elsewhere, once: its id is derived from
 * the decision's key, so the request that took the decision and the process
 * that carries it out can both write it, and a crash between the decision and
 * its entry is made good by the second without a double entry.
 */
export async function recordAuditOnce(models: AuditModels, key: string, record: AuditRecord): Promise<void> {
  const _id = new Types.ObjectId(createHash('sha256').update(`audit:${key}`).digest().subarray(0, 12));
  try {
    await models.AuditEntry.create({ _id, ...entryOf(record) });
  } catch (error) {
    if ((error as { code?: number }).code !== 11000) throw error;
    // Written (and journalled) by the other writer; one that crashed before its journal entry shows at the index's next whole read.
    return;
  }
  await journalAuditEntry(models, { _id, at: record.at, action: record.action });
}

function entryOf(record: AuditRecord) {
  return {
    at: record.at,
    actor: record.actor,
    action: record.action,
    target: record.target,
    details: record.details === undefined ? undefined : JSON.stringify(record.details).slice(0, 20_000),
  };
}

/** The newest entries first, a page at a time, optionally only one action, with every action the log holds (audit-index.ts). */
export function listAudit(models: Pick<Models, 'AuditEntry' | 'AuditChange' | 'ChangeStamp'>, query: { page: number; perPage: number; action?: string }) {
  return auditPage(models, query);
}
