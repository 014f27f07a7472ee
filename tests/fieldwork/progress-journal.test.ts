import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignFieldwork } from '../../server/fieldwork/fieldwork.service.ts';
import { linkProgressReads, linkProgressTestHooks } from '../../server/fieldwork/link-progress.ts';
import { personalLink } from '../../server/invitations/invitation.service.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { journalProgress, progressChangeId, progressStamp, PROGRESS_ENTRIES_KEPT, sequenceOf, stepsOf } from '../../server/respond/progress-changes.ts';
import { KEPT_MAX_AGE_MS, noteChange } from '../../server/shared/change-stamp.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { respondent } from '../helpers/respondent.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { retryFailed } from '../../server/mail/outbox.service.ts';
import { drainOutbox, PUBLIC_URL, senderFor } from '../helpers/mail.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform.close());

const textQuestions = new Set(buildCatalogue(loadSurveyLibrary()).questions.filter((q) => q.kind === 'text').map((q) => q.name));

describe("the fieldwork page follows the links' progress through the progress journal", () => {
  it('a first opening or submission elsewhere is read by _id; an erasure, a stamp no entry set and a removed entry have the progress read whole', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 4, countries: ['AT'] });
    const { campaignId } = campaign;
    const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
    const respondentOf = (i: number) => respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[i]!), invitations[i]!.tokenHash);
    // The page as another instance shows it: its own connection, nothing shared with the writer.
    const reader = await otherConnection(platform);
    try {
      const load = () => campaignFieldwork({ models: reader.models }, campaignId);
      expect(await load()).toMatchObject({ invited: 4, opened: 0, started: 0, completed: 0 });
      expect(linkProgressReads(reader.models)).toEqual({ whole: 1, entries: 0 });

      await respondentOf(0).open().expect(200);
      expect(await load()).toMatchObject({ opened: 1, completed: 0 });
      await respondentOf(1).open().expect(200);
      await respondentOf(1).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
      expect(await load()).toMatchObject({ opened: 2, completed: 1 });
      // Three entries (two openings, a submission), each read once by _id; the invitations were read for the first load only.
      expect(linkProgressReads(reader.models)).toEqual({ whole: 1, entries: 3 });
      expect(reader.wholeReads.filter((c) => c === 'invitations')).toHaveLength(1);

      // An erasure moves the respondent back out of the campaign: the page reads the progress whole, and no entry names the link.
      const contact = campaign.contacts.find((c) => String(c._id) === String(invitations[1]!.contact))!;
      await erasePerson(
        { models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions },
        { email: contact.email, mode: 'delete', actor: 'test' },
      );
      expect(await load()).toMatchObject({ invited: 3, opened: 1, completed: 0 });
      expect(linkProgressReads(reader.models).whole).toBe(2);
      const entries = await platform.models.ProgressChange.find({}).lean();
      expect(entries.filter((e) => e.p?.includes(String(invitations[1]!._id)))).toEqual([]);
      expect(entries.filter((e) => e.p?.includes(String(invitations[0]!._id)))).toHaveLength(1);

      // A writer that journals nothing (an older version) moves only the stamp.
      await platform.models.Invitation.updateOne({ _id: invitations[2]!._id }, { $set: { openedAt: platform.clock.now() } });
      await noteChange(platform.models, 'progress', [campaignId]);
      expect(await load()).toMatchObject({ opened: 2 });
      expect(linkProgressReads(reader.models).whole).toBe(3);

      // An entry removed before the reader came to it (a reader too far behind).
      await respondentOf(3).open().expect(200);
      const { n } = await progressStamp(platform.models, campaignId);
      await platform.models.ProgressChange.deleteOne({ _id: progressChangeId(String(campaignId), n) });
      expect(await load()).toMatchObject({ opened: 3 });
      expect(linkProgressReads(reader.models).whole).toBe(4);

      // Nothing changed: the stamp alone.
      const before = reader.read.length;
      expect(await load()).toMatchObject({ opened: 3 });
      expect(reader.read.slice(before).filter((c) => c !== 'change_stamps')).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it('past KEPT_MAX_AGE_MS the progress is read whole beside the load, not before it: a step whose writer crashed before its entry shows once that read ends', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const invitations = await platform.models.Invitation.find({ campaign: campaignId }).sort({ _id: 1 }).lean();
    const reader = await otherConnection(platform);
    try {
      const load = () => campaignFieldwork({ models: reader.models }, campaignId);
      expect(await load()).toMatchObject({ invited: 3, opened: 0 });
      const whole = linkProgressReads(reader.models).whole;
      // A writer that crashed between its step and its journal entry: no entry, no stamp.
      await platform.models.Invitation.updateOne({ _id: invitations[0]!._id }, { $set: { openedAt: platform.clock.now() } });
      expect(await load()).toMatchObject({ opened: 0 });

      linkProgressTestHooks.age(reader.models, campaignId, KEPT_MAX_AGE_MS);
      // Answered from what was followed so far, while the whole read runs.
      expect(await load()).toMatchObject({ opened: 0 });
      await linkProgressTestHooks.refreshed(reader.models, campaignId);
      expect(linkProgressReads(reader.models).whole).toBe(whole + 1);
      expect(await load()).toMatchObject({ opened: 1 });

      // The state read in the background goes on following the journal.
      await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitations[1]!), invitations[1]!.tokenHash).open().expect(200);
      expect(await load()).toMatchObject({ opened: 2 });
      expect(linkProgressReads(reader.models).whole).toBe(whole + 1);
    } finally {
      await reader.close();
    }
  });

  it('submissions at once go into shared entries, each link named once, and the page counts every one', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 8, countries: ['AT'] });
    const invitations = await platform.models.Invitation.find({ campaign: campaignId }).lean();
    const reader = await otherConnection(platform);
    try {
      expect(await campaignFieldwork({ models: reader.models }, campaignId)).toMatchObject({ completed: 0 });
      await Promise.all(
        invitations.map((invitation) =>
          respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation), invitation.tokenHash)
            .submit({ data: completeAnswers(), baseRevision: 0, language: 'en' })
            .expect(201),
        ),
      );
      expect(await campaignFieldwork({ models: reader.models }, campaignId)).toMatchObject({ completed: 8 });
      const entries = await platform.models.ProgressChange.find({ _id: { $gte: `${campaignId}:`, $lt: `${campaignId};` } }).lean();
      const named = entries.flatMap((entry) => stepsOf(entry).map((s) => `${s.id}=${s.step}`));
      expect(named.sort()).toEqual(invitations.map((i) => `${i._id}=completed`).sort());
      // Numbered without gaps from 1.
      expect(entries.map(sequenceOf).sort((a, b) => a - b)).toEqual(entries.map((_, i) => i + 1));
    } finally {
      await reader.close();
    }
  });

  it('a campaign keeps its latest entries only: each writer removes the one PROGRESS_ENTRIES_KEPT before its own', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 1, countries: ['AT'] });
    const invitation = (await platform.models.Invitation.findOne({ campaign: campaignId }).lean())!;
    const head = PROGRESS_ENTRIES_KEPT + 500;
    // A campaign whose journal is already that long, as a writer that knows nothing of it finds it: by its stamp.
    await noteChange(platform.models, 'progress', [campaignId], { v: 'head', n: head });
    const oldest = progressChangeId(String(campaignId), head + 1 - PROGRESS_ENTRIES_KEPT);
    const kept = progressChangeId(String(campaignId), head + 2 - PROGRESS_ENTRIES_KEPT);
    await platform.models.ProgressChange.collection.insertMany([{ _id: oldest, v: 'a', t: new Date() }, { _id: kept, v: 'b', t: new Date() }] as never);
    const writer = await otherConnection(platform);
    try {
      await journalProgress(writer.models, campaignId, invitation._id, 'opened');
    } finally {
      await writer.close();
    }
    expect(await progressStamp(platform.models, campaignId)).toMatchObject({ n: head + 1 });
    expect(await platform.models.ProgressChange.findById(oldest).lean()).toBeNull();
    expect(await platform.models.ProgressChange.findById(kept).lean()).not.toBeNull();
    expect((await platform.models.ProgressChange.findById(progressChangeId(String(campaignId), head + 1)).lean())?.p).toBe(`${invitation._id}=o`);
  });

  it("the invitations' delivery follows the email journal and matches what a first load reads from the emails: sent, failed, retried, skipped, and an email queued later", async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    const { campaignId } = campaign;
    const sink = await startSmtpSink();
    const reader = await otherConnection(platform);
    const deps = { models: platform.models, now: platform.clock.now };
    const send = async () => {
      const sender = senderFor(platform, sink.url);
      await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
      sender.close();
    };
    /** The followed page and a connection's first load, which reads the emails whole. */
    const both = async () => {
      const fresh = await otherConnection(platform);
      try {
        const [followed, whole] = [await campaignFieldwork({ models: reader.models }, campaignId), await campaignFieldwork({ models: fresh.models }, campaignId)];
        expect({ delivered: followed.delivered, failed: followed.failed, invited: followed.invited }).toEqual({ delivered: whole.delivered, failed: whole.failed, invited: whole.invited });
        return followed;
      } finally {
        await fresh.close();
      }
    };
    try {
      // The relay refuses one recipient: failed, and the address goes on the suppression list.
      sink.reply(campaign.emails[2]!, 550, 'No such mailbox', 1);
      await enqueueInvitations(deps, campaignId, 'test');
      expect(await both()).toMatchObject({ delivered: 0, failed: 0 });
      await send();
      expect(await both()).toMatchObject({ delivered: 2, failed: 1 });
      const before = reader.read.length;

      // The coordinator retries it: queued again, then skipped (the address is suppressed), neither delivered nor failed.
      const failed = (await platform.models.OutboxOutcome.findOne({ campaign: campaignId, state: 'failed' }).lean())!;
      expect(await retryFailed(deps, failed._id, 'test')).toBe(true);
      expect(await both()).toMatchObject({ delivered: 2, failed: 0 });
      await send();
      expect(await both()).toMatchObject({ delivered: 2, failed: 0 });
      expect(await platform.models.OutboxOutcome.countDocuments({ campaign: campaignId, state: 'skipped' })).toBe(1);

      // A contact added later gets a link and an email: its link is looked up by _id, once.
      const late = await platform.models.Contact.create({ institution: campaign.institutions[0]!._id, name: 'Late', email: `late-${campaignId}@school.example`, language: 'en' });
      await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaignId, [late]);
      await enqueueInvitations(deps, campaignId, 'test');
      await send();
      expect(await both()).toMatchObject({ invited: 4, delivered: 3, failed: 0 });
      // The followed page read no campaign's emails, claims or outcomes by a filter after its first loads.
      expect(reader.wholeReads.slice(before).filter((c) => c.startsWith('outbox'))).toEqual([]);
    } finally {
      await reader.close();
      await sink.close();
    }
  });
});
