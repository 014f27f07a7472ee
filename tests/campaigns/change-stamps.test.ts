import type { Types } from 'mongoose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closePreview, listCampaigns } from '../../server/campaigns/campaign.service.ts';
import { removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import type { Models } from '../../server/db/models.ts';
import { invitationCount } from '../../server/evidence/evidence-scope.service.ts';
import { fieldworkTimelines } from '../../server/fieldwork/fieldwork-timeline.service.ts';
import { campaignFieldwork } from '../../server/fieldwork/fieldwork.service.ts';
import { getInstitution, institutionTotals, listInstitutions, updateContact, updateInstitution } from '../../server/institutions/institution.service.ts';
import { createInvitations, personalLink, regenerateLink, revokeLink } from '../../server/invitations/invitation.service.ts';
import { campaignLinks } from '../../server/invitations/link-population.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { recordBounces } from '../../server/mail/bounce.service.ts';
import { countByRound, retryFailed } from '../../server/mail/outbox.service.ts';
import { noteChange } from '../../server/shared/change-stamp.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';
import { polledCounts, sendingFigures } from '../../server/mail/sending-progress.ts';
import { reminderDryRun } from '../../server/reminders/reminder.service.ts';
import { heldRecounts, retentionOverview } from '../../server/privacy/retention.service.ts';
import { noticeFor } from '../../server/privacy/privacy-notice.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { createCampaignWithContacts, drainOutbox, PUBLIC_URL, senderFor } from '../helpers/mail.ts';
import { respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

/** The reading side, as a second process would be; the writes go through the test platform's connection. */
const watchedReader = () => otherConnection(platform);

const live = (models: Models, campaignId: Types.ObjectId) => invitationCount(models, { campaigns: [String(campaignId)], where: {} });

/**
 * Loads twice more after a first load: only the change stamps may be read.
 * Returns what each later load reads again (the stamps apart), since the last call.
 */
async function onlyStampsAfterFirstLoad(reader: { read: string[] }, load: () => Promise<unknown>) {
  const readsOnce = reader.read.length;
  await load();
  await load();
  expect(reader.read.slice(readsOnce).every((c) => c === 'change_stamps')).toBe(true);
  reader.read.splice(0);
  return () => new Set(reader.read.splice(0).filter((c) => c !== 'change_stamps'));
}

/** A campaign of `contacts` contacts in AT, its invitations queued, a reader as another process and an SMTP sink, for `check`. */
async function withQueuedCampaign(contacts: number, check: (setup: { campaign: Awaited<ReturnType<typeof createCampaignWithContacts>>; campaignId: Types.ObjectId; reader: Awaited<ReturnType<typeof watchedReader>>; sink: SmtpSink }) => Promise<void>) {
  const campaign = await createCampaignWithContacts(platform, { contacts, countries: ['AT'] });
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
  const reader = await watchedReader();
  const sink = await startSmtpSink();
  try {
    await check({ campaign, campaignId: campaign.campaignId, reader, sink });
  } finally {
    await sink.close();
    await reader.close();
  }
}

/** The queued emails sent through the sink, as another process's sender would. */
async function sendQueued(sinkUrl: string) {
  const sender = senderFor(platform, sinkUrl);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();
}

describe('pages keep what they counted until it changes', () => {
  it("the response rate's invitations are read once, and a link made, revoked or reinstated elsewhere shows at the next count", async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 6, countries: ['AT', 'FR'] });
    const reader = await watchedReader();
    try {
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 6, institutions: 6 });
      expect(await invitationCount(reader.models, { campaigns: [String(campaignId)], where: { country: ['AT'] } })).toEqual({ invitations: 3, institutions: 3 });
      // The links come from the campaign's compact copy of them (found by _id), not from the invitations collection.
      expect(reader.read.filter((c) => c === 'link_changes')).toHaveLength(1);

      const deps = { models: platform.models, now: () => platform.clock.now(), tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL };
      const link = (await platform.models.Invitation.findOne({ campaign: campaignId, contact: contacts[0]!._id }).lean())!;
      await revokeLink(deps, link._id, 'test');
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 5, institutions: 5 });
      await regenerateLink(deps, link._id, 0, 'test');
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 6, institutions: 6 });
      // A second contact of the first institution: one more link, no more institutions.
      const colleague = await platform.models.Contact.create({ institution: contacts[0]!.institution, name: 'Colleague', email: `colleague-${campaignId}@school.example`, language: 'en' });
      await createInvitations(deps, campaignId, [colleague]);
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 7, institutions: 6 });
      expect((await campaignLinks(reader.models, campaignId)).total).toBe(7);
      // One read per change, none for the counts in between.
      expect(reader.read.filter((c) => c === 'link_changes')).toHaveLength(4);
      expect(reader.read).not.toContain('invitations');
    } finally {
      await reader.close();
    }
  });

  it('the fieldwork timeline reads its collections again only after a link or a round, and follows a completion through the progress journal', async () => {
    const first = await createInvitedContact(platform, {});
    const campaignId = first.campaignId;
    const campaign = (await platform.models.Campaign.findById(campaignId).lean())!;
    const reader = await watchedReader();
    try {
      const timelines = fieldworkTimelines({ models: reader.models, now: () => platform.clock.now() });
      expect((await timelines.of(campaign)).institutions.map((i) => i.completed)).toEqual([0]);
      const readsOnce = reader.read.length;
      expect(reader.read).toContain('invitations');
      await timelines.of(campaign);
      await timelines.of(campaign);
      // Only the change stamps were looked at.
      expect(reader.read.slice(readsOnce).every((c) => c === 'change_stamps')).toBe(true);

      const beforeAnswer = reader.read.length;
      await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      const after = await timelines.of(campaign);
      expect(after.institutions.map((i) => i.completed)).toEqual([1]);
      expect(after.days.reduce((sum, d) => sum + d.completed, 0)).toBe(1);
      // The submission came through the progress journal, by _id: no invitation or completion mark was read again.
      expect(new Set(reader.read.slice(beforeAnswer))).toEqual(new Set(['change_stamps', 'progress_changes']));
    } finally {
      await reader.close();
    }
  });

  it('the fieldwork page reads its collections once, and an email outcome, a respondent or a contact changed elsewhere shows at the next load', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const { campaignId } = campaign;
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const reader = await watchedReader();
    const sink = await startSmtpSink();
    try {
      const load = () => campaignFieldwork({ models: reader.models }, campaignId);
      const first = await load();
      expect(first).toMatchObject({ invited: 3, delivered: 0, opened: 0, completed: 0 });
      expect(reader.read).toEqual(expect.arrayContaining(['invitations', 'completions', 'outbox', 'outbox_outcomes', 'institutions', 'contacts']));
      const readsAgain = await onlyStampsAfterFirstLoad(reader, load);

      // The sender, as another process would, records the emails' outcomes.
      await sendQueued(sink.url);
      expect((await load()).delivered).toBe(3);
      // Only the email journal's entries, by _id: not the campaign's emails, claims and outcomes.
      expect(readsAgain()).toEqual(new Set(['email_changes']));

      // A respondent opens the link, another submits.
      const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
      const respondentOf = (i: number) => respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[i]!), invitations[i]!.tokenHash);
      await respondentOf(0).open().expect(200);
      expect((await load()).opened).toBe(1);
      // The progress journal's entry, by _id: no invitation or completion mark is read again.
      expect(readsAgain()).toEqual(new Set(['progress_changes']));
      await respondentOf(1).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      const afterAnswer = await load();
      expect(afterAnswer).toMatchObject({ opened: 2, started: 1, completed: 1 });
      expect(afterAnswer.nonrespondents()).toHaveLength(2);
      expect(afterAnswer.nonrespondentCount).toBe(2);
      expect(readsAgain()).toEqual(new Set(['progress_changes']));

      // The coordinator corrects a contact's name.
      const contact = campaign.contacts.find((c) => String(c._id) === String(invitations[2]!.contact))!;
      await updateContact({ models: platform.models, now: platform.clock.now }, contact._id, { name: 'Renamed Leader', email: contact.email, language: 'en' }, 'test');
      expect((await load()).nonrespondents().map((n) => n.contactName)).toContain('Renamed Leader');
      await load();
      // The contact list's journal names the contact, read by _id.
      expect(readsAgain()).toEqual(new Set(['contact_changes', 'contacts']));
    } finally {
      await sink.close();
      await reader.close();
    }
  });

  it("the reminders' dry run reads its collections once, and an email outcome, a response or a bounce elsewhere shows at the next load", async () => {
    await withQueuedCampaign(4, async ({ campaign, campaignId, reader, sink }) => {
      const load = () => reminderDryRun({ models: reader.models }, campaignId);
      expect((await load()).total).toBe(0);
      expect(reader.read).toEqual(expect.arrayContaining(['invitations', 'completions', 'outbox', 'outbox_outcomes']));
      const readsAgain = await onlyStampsAfterFirstLoad(reader, load);

      // The sender, as another process would, records the invitations' outcomes.
      await sendQueued(sink.url);
      expect((await load()).total).toBe(4);
      expect(readsAgain()).toEqual(new Set(['email_changes']));

      // One respondent submits; another's address bounces.
      const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
      await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[0]!), invitations[0]!.tokenHash)
        .submit({ data: completeAnswers(), baseRevision: 0, language: 'en' })
        .expect(201);
      expect((await load()).total).toBe(3);
      const bounced = campaign.contacts.find((c) => String(c._id) === String(invitations[1]!.contact))!;
      await recordBounces({ models: platform.models, now: platform.clock.now }, [bounced.email], 'test');
      const afterBounce = await load();
      expect(afterBounce.total).toBe(2);
      expect(afterBounce.recipients.map((r) => r.email)).not.toContain(bounced.email);
      // With nothing changed since, the dry run is the one kept, not made again from every link.
      expect(await load()).toBe(afterBounce);
      // The response came through the progress journal: no invitation was read again.
      expect(reader.read.filter((c) => c === 'invitations')).toHaveLength(0);
    });
  });

  it("the sending page's figures are read once, and an outcome or a coordinator's retry elsewhere shows at the next load", async () => {
    await withQueuedCampaign(3, async ({ campaign, campaignId, reader, sink }) => {
      const deps = { models: reader.models };
      const load = async () => {
        const { counts, ...problems } = await sendingFigures(deps, campaignId);
        return { ...counts.all, ...problems };
      };
      expect(await load()).toMatchObject({ queued: 3, sent: 0, failed: [], unknown: [] });
      expect(reader.read).toEqual(expect.arrayContaining(['outbox', 'outbox_claims', 'outbox_outcomes']));
      await onlyStampsAfterFirstLoad(reader, async () => (await load(), await polledCounts(deps, campaignId)));

      // The sender, as another process would, sends two and has one refused.
      sink.reply(campaign.emails[0]!, 550, 'No such mailbox');
      await sendQueued(sink.url);
      const readBefore = reader.wholeReads.length;
      const sent = await load();
      expect(sent).toMatchObject({ queued: 0, sent: 2 });
      // The counts follow the email journal, and the listed messages are looked up by _id: no read of the email history.
      expect(reader.wholeReads.slice(readBefore).filter((c) => c.startsWith('outbox'))).toEqual([]);
      expect(sent.failed.map((s) => s.message.to)).toEqual([campaign.emails[0]]);

      // The coordinator retries it: the page's next load shows it queued again.
      const failed = sent.failed[0]!;
      await retryFailed({ models: platform.models, now: platform.clock.now }, `${failed.message._id}:${failed.attempts - 1}`, 'test');
      expect(await load()).toMatchObject({ queued: 1, failed: [] });
    });
  });

  it("the sending page's progress poll follows the campaign's email journal: claims, outcomes and a retry elsewhere show at the next poll without a read of the email history, and a change no entry names is read whole", async () => {
    await withQueuedCampaign(3, async ({ campaign, campaignId, reader, sink }) => {
      const poll = () => polledCounts({ models: reader.models }, campaignId);
      const truth = async () => (await countByRound({ models: platform.models }, campaignId)).all;
      const history = ['outbox', 'outbox_claims', 'outbox_outcomes'];
      const readsSince = (from: number) => reader.read.slice(from).filter((c) => history.includes(c));
      expect((await poll()).all).toEqual(await truth());
      expect(reader.read).toEqual(expect.arrayContaining(history));
      const quiet = reader.read.length;
      await poll();
      expect(reader.read.slice(quiet).every((c) => c === 'change_stamps')).toBe(true);

      // Another process's sender claims the three and hands them to a relay that holds them.
      const followed = reader.read.length;
      sink.reply(campaign.emails[0]!, 550, 'No such mailbox');
      sink.hold();
      const sending = sendQueued(sink.url);
      await sink.heldMessages(2);
      // Claimed, then one refused at once and two held: the poll shows each within the stamp's interval.
      await expect.poll(async () => (await poll()).all).toMatchObject({ sending: 2, failed: 1, queued: 0 });
      expect((await poll()).all).toEqual(await truth());
      sink.release();
      await sending;
      expect((await poll()).all).toMatchObject({ sent: 2, failed: 1, queued: 0, sending: 0 });
      expect((await poll()).all).toEqual(await truth());

      // The coordinator retries the refused one.
      const failed = (await sendingFigures({ models: platform.models }, campaignId)).failed[0]!;
      await retryFailed({ models: platform.models, now: platform.clock.now }, `${failed.message._id}:${failed.attempts - 1}`, 'test');
      expect((await poll()).all).toMatchObject({ sent: 2, failed: 0, queued: 1 });
      expect(readsSince(followed)).toEqual([]);
      expect(reader.read.slice(followed)).toContain('email_changes');

      // A writer that journals nothing (an erasure, an older version) moves the stamp alone: the poll reads the history again, within its gap.
      const unnamed = reader.read.length;
      await noteChange(platform.models, 'emails', [campaignId]);
      await expect.poll(async () => (await poll(), readsSince(unnamed).length)).toBeGreaterThan(0);
      expect((await poll()).all).toEqual(await truth());
      // Another such change at once: the whole read just made is reused for its gap (2 s at least).
      const again = reader.read.length;
      await noteChange(platform.models, 'emails', [campaignId]);
      await poll();
      expect(readsSince(again)).toEqual([]);
    });
  });

  it('the campaign list, the close page, the institutions page and an institution\'s page read their collections once, and a link or an institution changed elsewhere shows at the next load', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const reader = await watchedReader();
    try {
      const deps = { models: reader.models, now: () => platform.clock.now() };
      const institutionId = contacts[0]!.institution;
      const name = (await platform.models.Institution.findById(institutionId, { name: 1 }).lean())!.name;
      const campaignName = (await platform.models.Campaign.findById(campaignId, { name: 1 }).lean())!.name;
      const load = async () => {
        const [campaigns, close, found, totals, page] = await Promise.all([
          listCampaigns(deps),
          closePreview(deps, campaignId),
          listInstitutions(deps, { q: name.toUpperCase(), page: 1 }),
          institutionTotals(deps),
          getInstitution(deps, institutionId),
        ]);
        return {
          links: campaigns.find((c) => String(c._id) === String(campaignId))?.invitations,
          open: close.notStarted,
          found: found.institutions.map((i) => i.name),
          totals,
          pageLinks: page.contacts.map((c) => `${c.name}: ${c.links.map((l) => l.campaignName).join()}`),
        };
      };
      const first = await load();
      expect(first).toMatchObject({ links: 3, open: 3, found: [name], pageLinks: [`${contacts[0]!.name}: ${campaignName}`] });
      const wholeOnce = reader.wholeReads.length;
      await load();
      await load();
      // Nothing but the campaigns themselves (a document each) was read by a filter: the rest were stamps and links by _id.
      expect(reader.wholeReads.slice(wholeOnce).filter((c) => c !== 'campaigns')).toEqual([]);

      // Another process makes a link for a new contact and renames the institution.
      const colleague = await platform.models.Contact.create({ institution: institutionId, name: 'Colleague', email: `colleague-${campaignId}@school.example`, language: 'en' });
      await noteContactsChange(platform.models, { contacts: [colleague._id] });
      await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaignId, [colleague]);
      const institution = (await platform.models.Institution.findById(institutionId).lean())!;
      await updateInstitution({ models: platform.models, now: platform.clock.now }, institutionId, { name: `${name} renamed`, country: institution.country as 'AT', type: institution.type as 'ivet_school' }, 'test');
      const after = await load();
      expect(after).toMatchObject({ links: 4, open: 4, found: [`${name} renamed`], pageLinks: [`Colleague: ${campaignName}`, `${contacts[0]!.name}: ${campaignName}`] });
      expect(after.totals.contacts).toBe(first.totals.contacts + 1);
      // The close page's links' progress, at the first load only: the link made later comes from the campaign's copy of its links.
      expect(reader.wholeReads.filter((c) => c === 'invitations')).toHaveLength(1);
    } finally {
      await reader.close();
    }
  });

  it("the personal-data page's counts are read once, and a draft, a submission, a revision and queued emails elsewhere show at the next load", async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const reader = await watchedReader();
    try {
      const load = async () => {
        const plan = (await retentionOverview({ models: reader.models, now: platform.clock.now })).find((p) => String(p.campaign) === String(campaignId))!;
        return plan.counts;
      };
      expect(await load()).toMatchObject({ invitations: 3, contacts: 3, drafts: 0, consents: 0, responsesToAnonymise: 0, revisions: 0, emails: 0 });
      const wholeOnce = reader.wholeReads.length;
      await load();
      await load();
      // Nothing but the campaigns themselves and, while the journal is empty, its floor marks (a handful of small documents each)
      // was read by a filter: the rest were stamps, the journal's head and purges by _id.
      expect(reader.wholeReads.slice(wholeOnce).filter((c) => c !== 'campaigns' && c !== 'evidence_followers')).toEqual([]);

      // Elsewhere: a respondent saves a draft of nothing of their own yet (a change of language), which moved no stamp before.
      const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
      const person = (i: number) => respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[i]!), invitations[i]!.tokenHash);
      await person(0).saveDraft({ data: {}, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
      expect(await load()).toMatchObject({ drafts: 1, responsesToAnonymise: 0 });

      // Another submits, then revises (which only the evidence journal says); the invitations are queued.
      await person(1).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toMatchObject({ drafts: 1, responsesToAnonymise: 1, revisions: 1 });
      await person(1).submit({ data: { ...completeAnswers(), S1_2a: 3 }, baseRevision: 1, language: 'en' }).expect(201);
      expect(await load()).toMatchObject({ responsesToAnonymise: 1, revisions: 2 });
      await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
      expect(await load()).toMatchObject({ emails: 3, invitations: 3, contacts: contacts.length });
    } finally {
      await reader.close();
    }
  });

  it("the personal-data page counts again only what a change can have changed, and a consent given elsewhere shows at the next load", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { lawfulBasis: 'consent' } });
    const campaign = (await platform.models.Campaign.findById(campaignId).lean())!;
    const reader = await watchedReader();
    try {
      const load = async () => (await retentionOverview({ models: reader.models, now: platform.clock.now })).find((p) => String(p.campaign) === String(campaignId))!.counts;
      let before = heldRecounts(reader.models);
      /** The parts of the counts the loads since the last call counted again. */
      const recounted = () => {
        const now = heldRecounts(reader.models);
        const parts = Object.keys(now).filter((part) => now[part as keyof typeof now] !== before[part as keyof typeof before]);
        before = now;
        return parts.sort();
      };
      expect(await load()).toMatchObject({ invitations: 3, contacts: 3, consents: 0, drafts: 0, emails: 0 });
      recounted();
      await load();
      expect(recounted()).toEqual([]);

      // Elsewhere: a respondent opens their link, which holds nothing the page counts.
      const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
      const path = personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[0]!);
      const person = respondent(platform, path, invitations[0]!.tokenHash);
      await person.open().expect(200);
      expect((await platform.models.Invitation.findById(invitations[0]!._id).lean())!.openedAt).toBeTruthy();
      await load();
      expect(recounted()).toEqual([]);

      // They consent, which nothing but the consent recorded before.
      await request(platform.app).post(`${path}/consent`).set('X-CSRF-Token', person.csrf).send({ version: noticeFor(campaign, 'en').version, language: 'en' }).expect(201);
      expect(await load()).toMatchObject({ consents: 1, drafts: 0 });
      expect(recounted()).toEqual(['consents', 'drafts']);

      // The invitations queued (and written in the email journal, which the emails as sent follow): the emails only.
      await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
      expect(await load()).toMatchObject({ emails: 3, consents: 1 });
      expect(recounted()).toEqual(['emails', 'sentEmails']);

      // A submission with no draft: the answers only; not the drafts, the consents, the links or the emails. The answers
      // follow the evidence journal (answers-held.ts): neither the responses nor their revisions are read again.
      await person.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      reader.wholeReads.splice(0);
      expect(await load()).toMatchObject({ responsesToAnonymise: 1, revisions: 1, invitations: 3, emails: 3, drafts: 0, consents: 1 });
      expect(recounted()).toEqual(['responses']);
      expect(reader.wholeReads.filter((c) => ['responses', 'response_revisions', 'invitations', 'consents'].includes(c))).toEqual([]);

      // Another consents and saves a draft; their submission removes it, which shows at the next load.
      const otherPath = personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[1]!);
      const other = respondent(platform, otherPath, invitations[1]!.tokenHash);
      await other.open().expect(200);
      await request(platform.app).post(`${otherPath}/consent`).set('X-CSRF-Token', other.csrf).send({ version: noticeFor(campaign, 'en').version, language: 'en' }).expect(201);
      await other.saveDraft({ data: { S1_2a: 3 }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
      expect(await load()).toMatchObject({ drafts: 1, consents: 2, responsesToAnonymise: 1 });
      recounted();
      await other.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toMatchObject({ drafts: 0, consents: 2, responsesToAnonymise: 2, revisions: 2 });
      expect(recounted()).toEqual(['consents', 'drafts', 'responses']);
    } finally {
      await reader.close();
    }
  });

  it('removing demo data that a real campaign invited by mistake shows in its response rate at the next count', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 3 });
    await platform.models.Contact.updateOne({ _id: contacts[0]!._id }, { $set: { demo: true } });
    const reader = await watchedReader();
    try {
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 3, institutions: 3 });
      await removeDemoData({ models: platform.models, now: platform.clock.now }, 'test');
      expect(await live(reader.models, campaignId)).toEqual({ invitations: 2, institutions: 2 });
    } finally {
      await reader.close();
    }
  });
});
