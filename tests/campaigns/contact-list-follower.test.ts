import { setTimeout as sleep } from 'node:timers/promises';
import type { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactListReads, followContactList } from '../../server/campaigns/audience-state.ts';
import { selectAudience, summariseAudience } from '../../server/campaigns/audience.service.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
import { invitationDryRun } from '../../server/mail/invitation-mail.service.ts';
import { unsubscribe } from '../../server/mail/unsubscribe.service.ts';
import { unsubscribeToken } from '../../server/mail/unsubscribe-token.ts';
import { CONTACT_LIST as ALL_CAMPAIGNS, noteChange } from '../../server/shared/change-stamp.ts';
import { contactChangeId, contactListStamp, KEEP_ENTRIES_MS, noteContactsChange } from '../../server/shared/contact-changes.ts';
import { createApp } from '../../server/app.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { confirmationPage } from '../helpers/confirm-send.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const CONTACT_LIST = ['contacts', 'institutions', 'suppressions'];
const DUAL = 'Dual or apprenticeship-based initial VET';

/** Waits until `condition` holds (the test's own timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** Whether the kept contact list was read again since `before`, whole or only what changed. */
function readAgain(models: object, before: ReturnType<typeof contactListReads>): boolean {
  const now = contactListReads(models);
  return now.changes > before.changes || now.whole > before.whole;
}

/** Moves one of the campaign's institutions to the dual type, through a CSV import on `models`' connection. */
function importAsDual(models: TestPlatform['models'], campaign: Awaited<ReturnType<typeof createCampaignWithContacts>>, i: number) {
  const [institution, contact] = [campaign.institutions[i]!, campaign.contacts[i]!];
  const csv = `institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags\n${institution.name},${institution.country},ivet_dual,,${contact.name},${contact.email},en,\n`;
  return importContacts({ models, now: platform.clock.now }, csv, { commit: true, actor: 'test' });
}

describe("the platform's process follows the contact list in the background", () => {
  it('the confirmation page read after a start, a change of this process and one of another process reads no contact, institution or suppression whole, and counts each change', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const dryRun = (models: TestPlatform['models'], id: Types.ObjectId) => invitationDryRun({ models }, id);
    // The platform's own connection, its database commands recorded; here it looks for another process's changes only once an hour.
    const own = await otherConnection(platform);
    const follower = followContactList(own.models, { everyMs: 3_600_000 });
    try {
      await follower.ready();
      let mark = own.wholeReads.length;
      expect((await dryRun(own.models, campaign.campaignId)).emails).toBe(3);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);

      // A change this process makes (an unsubscribe through its link): its contact and the suppression list read again in the background at once.
      const before = contactListReads(own.models);
      await unsubscribe({ models: own.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(campaign.contacts[0]!._id)));
      await until(() => readAgain(own.models, before));
      expect(contactListReads(own.models).whole).toBe(before.whole);
      mark = own.wholeReads.length;
      expect((await dryRun(own.models, campaign.campaignId)).emails).toBe(2);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);

      // Another process's import, not seen yet by the background: the page finds the stamp moved, reads what changed, and counts it.
      mark = own.wholeReads.length;
      await importAsDual(platform.models, campaign, 1);
      const counted = await dryRun(own.models, campaign.campaignId);
      expect(counted.byType.map((t) => t.label)).toContain(DUAL);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);
      expect(contactListReads(own.models).whole).toBe(before.whole);
    } finally {
      await follower.stop();
      await own.close();
    }
  });

  it("the campaign page's audience is counted from the list the background read, and from a read of what changed once another process changed it", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const own = await otherConnection(platform);
    const follower = followContactList(own.models, { everyMs: 3_600_000 });
    try {
      await follower.ready();
      const stored = (await own.models.Campaign.findById(campaign.campaignId).lean())!;
      let mark = own.wholeReads.length;
      const summary = await summariseAudience(own.models, stored);
      // The same members a read now selects (earlier tests' contacts in AT among them).
      const fresh = await selectAudience(platform.models, stored);
      expect(summary.matching).toBe(fresh.members.length);
      expect(summary.matching).toBeGreaterThanOrEqual(3);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);

      await importAsDual(platform.models, campaign, 2);
      mark = own.wholeReads.length;
      const readBefore = own.read.length;
      const after = await summariseAudience(own.models, stored);
      const dual = (s: typeof summary) => s.byType.find((t) => t.label === DUAL)?.count ?? 0;
      expect(dual(after)).toBe(dual(summary) + 1);
      // The changed institution looked up by _id after the journal, nothing read whole.
      expect(own.read.slice(readBefore)).toEqual(expect.arrayContaining(['contact_changes', 'institutions']));
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);
    } finally {
      await follower.stop();
      await own.close();
    }
  });

  it("another process's import is read in the background within the follower's interval, before the page asks", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const own = await otherConnection(platform);
    const follower = followContactList(own.models, { everyMs: 20 });
    try {
      await follower.ready();
      const before = contactListReads(own.models);
      let mark = own.wholeReads.length;
      await importAsDual(platform.models, campaign, 0);
      await until(() => readAgain(own.models, before));
      expect(contactListReads(own.models).whole).toBe(before.whole);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);
      mark = own.wholeReads.length;
      const counted = await invitationDryRun({ models: own.models }, campaign.campaignId);
      expect(counted.byType.map((t) => t.label)).toContain(DUAL);
      expect(own.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);
    } finally {
      await follower.stop();
      await own.close();
    }
  });

  it("with the app's own process following, the page's figures follow contacts changed through another connection at the very next load", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const follower = followContactList(platform.models, { everyMs: 20 });
    const other = await otherConnection(platform);
    try {
      await follower.ready();
      const whole = contactListReads(platform.models).whole;
      const first = await confirmationPage(coordinator, campaign.campaignId);
      expect(first.emails).toBe(3);
      expect(first.page).not.toContain(DUAL);
      await importAsDual(other.models, campaign, 2);
      expect((await confirmationPage(coordinator, campaign.campaignId)).page).toContain(DUAL);
      await unsubscribe({ models: other.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(campaign.contacts[1]!._id)));
      expect((await confirmationPage(coordinator, campaign.campaignId)).emails).toBe(2);
      // Both read from the journal: the list was not read whole again.
      expect(contactListReads(platform.models).whole).toBe(whole);
      // And this process's own change.
      await unsubscribe({ models: platform.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(campaign.contacts[0]!._id)));
      expect((await confirmationPage(coordinator, campaign.campaignId)).emails).toBe(1);
    } finally {
      await follower.stop();
      await other.close();
    }
  });

  it("after another process unsubscribes one contact and deletes another, this process's page drops both having read only those two, and a change the journal does not name reads the whole list", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const own = await otherConnection(platform);
    const follower = followContactList(own.models, { everyMs: 3_600_000 });
    const dryRun = () => invitationDryRun({ models: own.models }, campaign.campaignId);
    try {
      await follower.ready();
      expect((await dryRun()).emails).toBe(3);
      const before = contactListReads(own.models);
      const mark = own.wholeReads.length;

      await unsubscribe({ models: platform.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(campaign.contacts[0]!._id)));
      expect((await dryRun()).emails).toBe(2);
      // Deleted as an erasure or the retention purge deletes: the journal names it, the reader finds it gone.
      await platform.models.Contact.deleteOne({ _id: campaign.contacts[1]!._id });
      await noteContactsChange(platform.models, { contacts: [campaign.contacts[1]!._id] });
      expect((await dryRun()).emails).toBe(1);
      // The suppression list, short, is read whole after the unsubscribe; contacts and institutions are not.
      expect(own.wholeReads.slice(mark).filter((c) => c === 'contacts' || c === 'institutions')).toEqual([]);
      expect(contactListReads(own.models)).toEqual({ whole: before.whole, changes: before.changes + 2 });

      // A writer that moves the stamp without a journal entry (one of an older version): the list is read whole.
      await platform.models.Contact.updateOne({ _id: campaign.contacts[2]!._id }, { $set: { active: false } });
      await noteChange(platform.models, 'contacts', [ALL_CAMPAIGNS]);
      expect((await dryRun()).emails).toBe(0);
      expect(contactListReads(own.models).whole).toBe(before.whole + 1);
    } finally {
      await follower.stop();
      await own.close();
    }
  });

  it("with two instances on one database, an institution's type edited on instance A's page shows on instance B's confirmation page at its next load, B reading only that institution again", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    // Instance B: its own app and connection (its commands recorded), its follower looking for other processes' changes once an hour only.
    const b = await otherConnection(platform);
    const appB = createApp({
      models: b.models,
      questionnaires: platform.questionnaires,
      secrets: { tokenKey: platform.tokenKey, sessionSecret: platform.sessionSecret, tagKey: platform.tagKey },
      now: platform.clock.now,
      queueInvitations: () => undefined,
      options: { bodyLimit: 256 * 1024, tokenRateLimit: 10_000, cacheViews: true },
    });
    const follower = followContactList(b.models, { everyMs: 3_600_000 });
    try {
      await follower.ready();
      const coordinatorB = await signIn({ ...platform, app: appB }, 'coordinator');
      expect((await confirmationPage(coordinatorB, campaign.campaignId)).page).not.toContain(DUAL);
      const before = contactListReads(b.models);
      const mark = b.wholeReads.length;

      const institution = campaign.institutions[0]!;
      await coordinator.agent
        .post(`/admin/institutions/${institution._id}`)
        .type('form')
        .send({ name: institution.name, country: institution.country, type: 'ivet_dual', erasmusId: '', _csrf: coordinator.csrf })
        .expect(303);
      const after = await confirmationPage(coordinatorB, campaign.campaignId);
      expect(after.page).toContain(DUAL);
      expect(after.emails).toBe(3);
      expect(contactListReads(b.models)).toEqual({ whole: before.whole, changes: before.changes + 1 });
      expect(b.wholeReads.slice(mark).filter((c) => CONTACT_LIST.includes(c))).toEqual([]);
    } finally {
      await follower.stop();
      await b.close();
    }
  });

  it("every 100th entry removes the journal's entries older than an hour and keeps the newer ones, and a reader that had not applied the removed ones reads the whole list once and shows their changes", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const own = await otherConnection(platform);
    const follower = followContactList(own.models, { everyMs: 3_600_000 });
    const dryRun = () => invitationDryRun({ models: own.models }, campaign.campaignId);
    const unsubscribeAt = (i: number) => unsubscribe({ models: platform.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(campaign.contacts[i]!._id)));
    // An entry that changes nothing (it names a contact as it is): it moves the journal on.
    const emptyEntry = () => noteContactsChange(platform.models, { contacts: [campaign.contacts[2]!._id] });
    const head = async () => (await contactListStamp(platform.models)).n;
    try {
      await follower.ready();
      const first = await dryRun();
      expect(first.emails).toBe(3);
      expect(first.byType.map((t) => t.label)).not.toContain(DUAL);
      const before = contactListReads(own.models);

      // Another process's import moves an institution to the dual type; its entry, and those after it up
      // to two before the next hundredth, are written more than an hour ago, the one before the hundredth now.
      await importAsDual(platform.models, campaign, 0);
      const imported = await head();
      while ((await head()) % 100 !== 98) await emptyEntry();
      const lastOld = await head();
      const hundredth = lastOld + 2;
      await platform.models.ContactChange.updateMany({ _id: { $lte: contactChangeId(lastOld) } }, { $set: { t: new Date(Date.now() - KEEP_ENTRIES_MS - 60_000) } });
      await emptyEntry();
      // The hundredth entry, another unsubscribe, removes the old ones.
      await unsubscribeAt(1);
      expect(await head()).toBe(hundredth);
      const left = (await platform.models.ContactChange.find({}, { _id: 1 }).lean()).map((e) => Number(e._id));
      expect(left.filter((n) => n <= lastOld)).toEqual([]);
      expect(left).toEqual(expect.arrayContaining([lastOld + 1, hundredth]));
      expect(imported).toBeLessThanOrEqual(lastOld);

      // The reader last applied an entry before the removed ones: it reads the whole list, once, with the import's change in it
      // (which no entry left names) and the unsubscribe's.
      const mark = own.wholeReads.length;
      const after = await dryRun();
      expect(after.byType.map((t) => t.label)).toContain(DUAL);
      expect(after.emails).toBe(2);
      expect(contactListReads(own.models)).toEqual({ whole: before.whole + 1, changes: before.changes });
      expect(own.wholeReads.slice(mark).filter((c) => c === 'contacts')).toEqual(['contacts']);
    } finally {
      await follower.stop();
      await own.close();
    }
  });
});
