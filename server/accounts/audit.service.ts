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
  await models.AuditEntry.create({
    at: record.at,
    actor: record.actor,
    action: record.action,
    target: record.target,
    details: record.details === undefined ? undefined : JSON.stringify(record.details).slice(0, 20_000),
  });
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
