import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';

export interface AuditRecord {
  /** The signed-in user's email, or "command line" / "setup link". */
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
  at: Date;
}

/** Adds one entry to the audit log. */
export async function recordAudit(models: Pick<Models, 'AuditEntry'>, record: AuditRecord): Promise<void> {
  await models.AuditEntry.create(entryOf(record));
}

/**
 * Adds the entry of a decision stored elsewhere, once: its id is derived from
 * the decision's key, so the request that took the decision and the process
 * that carries it out can both write it, and a crash between the decision and
 * its entry is made good by the second without a double entry.
 */
export async function recordAuditOnce(models: Pick<Models, 'AuditEntry'>, key: string, record: AuditRecord): Promise<void> {
  const _id = new Types.ObjectId(createHash('sha256').update(`audit:${key}`).digest().subarray(0, 12));
  try {
    await models.AuditEntry.create({ _id, ...entryOf(record) });
  } catch (error) {
    if ((error as { code?: number }).code !== 11000) throw error;
  }
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

/** The newest entries first, a page at a time, optionally only one action. */
export async function listAudit(models: Pick<Models, 'AuditEntry'>, query: { page: number; perPage: number; action?: string }) {
  const filter = query.action ? { action: query.action } : {};
  const [entries, total] = await Promise.all([
    models.AuditEntry.find(filter)
      .sort({ at: -1, _id: -1 })
      .skip((query.page - 1) * query.perPage)
      .limit(query.perPage)
      .lean(),
    models.AuditEntry.countDocuments(filter),
  ]);
  return { entries, total, pages: Math.max(1, Math.ceil(total / query.perPage)) };
}
