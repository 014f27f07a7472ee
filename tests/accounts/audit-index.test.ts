import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditIndexReads, auditIndexTestHooks } from '../../server/accounts/audit-index.ts';
import { listAudit, recordAudit, recordAuditOnce } from '../../server/accounts/audit.service.ts';
import { KEPT_MAX_AGE_MS, noteChange } from '../../server/shared/change-stamp.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

/** The page as the log itself gives it: sorted, filtered and counted by the database. */
async function fromTheLog(query: { page: number; perPage: number; action?: string }) {
  const filter = query.action ? { action: query.action } : {};
  const entries = await platform.models.AuditEntry.find(filter)
    .sort({ at: -1, _id: -1 })
    .skip((query.page - 1) * query.perPage)
    .limit(query.perPage)
    .lean();
  const total = await platform.models.AuditEntry.countDocuments(filter);
  return { ids: entries.map((e) => String(e._id)), targets: entries.map((e) => e.target ?? null), total, actions: ((await platform.models.AuditEntry.distinct('action')) as string[]).sort() };
}

const shown = (page: Awaited<ReturnType<typeof listAudit>>) => ({
  ids: page.entries.map((e) => String(e._id)),
  targets: page.entries.map((e) => e.target ?? null),
  total: page.total,
  actions: page.actions,
});

describe("the audit log's page keeps an index of the log and follows its journal", () => {
  it('pages, filters and counts as the log does; new entries elsewhere are read by _id, a blanked entry shows at once, a stamp no entry set reads the log whole', async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 2, 1, 9, minute));
    for (let i = 0; i < 7; i++) await recordAudit(platform.models, { actor: 'test', action: i % 2 ? 'user.add' : 'campaign.update', target: `target ${i}`, at: at(i) });
    const reader = await otherConnection(platform);
    try {
      const page = (query: { page: number; perPage: number; action?: string }) => listAudit(reader.models, query);
      for (const query of [{ page: 1, perPage: 3 }, { page: 2, perPage: 3 }, { page: 3, perPage: 3 }, { page: 1, perPage: 2, action: 'user.add' }]) {
        expect(shown(await page(query))).toEqual(await fromTheLog(query));
      }
      expect(auditIndexReads(reader.models)).toEqual({ whole: 1, entries: 0 });
      const wholeBefore = reader.wholeReads.length;

      // Another process adds entries: two at the same time (ordered by id, as the log sorts them) and one written once under a key, twice.
      await recordAudit(platform.models, { actor: 'test', action: 'privacy.erase', target: 'same time a', at: at(30) });
      await recordAudit(platform.models, { actor: 'test', action: 'privacy.erase', target: 'same time b', at: at(30) });
      await recordAuditOnce(platform.models, 'send:1', { actor: 'test', action: 'campaign.send', target: 'once', at: at(31) });
      await recordAuditOnce(platform.models, 'send:1', { actor: 'test', action: 'campaign.send', target: 'once', at: at(31) });
      for (const query of [{ page: 1, perPage: 4 }, { page: 3, perPage: 4 }, { page: 1, perPage: 5, action: 'privacy.erase' }]) {
        expect(shown(await page(query))).toEqual(await fromTheLog(query));
      }
      expect(auditIndexReads(reader.models)).toEqual({ whole: 1, entries: 3 });
      // No filter, sort, count or distinct on the log: only look-ups by _id.
      expect(reader.wholeReads.slice(wholeBefore).filter((c) => c === 'audit_entries')).toEqual([]);

      // An erasure blanks what an entry says: the page shows it as the log now has it.
      const newest = (await platform.models.AuditEntry.findOne({ target: 'once' }).lean())!;
      await platform.models.AuditEntry.updateOne({ _id: newest._id }, { $set: { target: '[erased]' } });
      expect((await page({ page: 1, perPage: 1 })).entries[0]!.target).toBe('[erased]');

      // A writer that journals nothing (an older version) moves only the stamp.
      await platform.models.AuditEntry.create({ actor: 'old version', action: 'user.disable', at: at(40) });
      await noteChange(platform.models, 'audit', ['all']);
      expect(shown(await page({ page: 1, perPage: 3 }))).toEqual(await fromTheLog({ page: 1, perPage: 3 }));
      expect(auditIndexReads(reader.models).whole).toBe(2);
    } finally {
      await reader.close();
    }
  });

  it('past KEPT_MAX_AGE_MS the log is read whole beside the load, not before it: an entry whose writer crashed before its journal entry shows once that read ends', async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 2, 2, 9, minute));
    await recordAudit(platform.models, { actor: 'test', action: 'user.add', target: 'journalled', at: at(1) });
    const reader = await otherConnection(platform);
    try {
      const page = () => listAudit(reader.models, { page: 1, perPage: 50 });
      const first = await page();
      const whole = auditIndexReads(reader.models).whole;
      // A writer that crashed between its entry and its journal entry.
      await platform.models.AuditEntry.create({ actor: 'crashed', action: 'user.disable', target: 'not journalled', at: at(2) });
      expect((await page()).total).toBe(first.total);

      auditIndexTestHooks.age(reader.models, KEPT_MAX_AGE_MS);
      // Answered from the index followed so far, while the whole read runs.
      expect((await page()).total).toBe(first.total);
      await auditIndexTestHooks.refreshed(reader.models);
      expect(auditIndexReads(reader.models).whole).toBe(whole + 1);
      expect(shown(await page())).toEqual(await fromTheLog({ page: 1, perPage: 50 }));

      // The index read beside the loads goes on following the journal.
      await recordAudit(platform.models, { actor: 'test', action: 'user.add', target: 'after', at: at(3) });
      expect(shown(await page())).toEqual(await fromTheLog({ page: 1, perPage: 50 }));
      expect(auditIndexReads(reader.models)).toMatchObject({ whole: whole + 1 });
    } finally {
      await reader.close();
    }
  });
});
