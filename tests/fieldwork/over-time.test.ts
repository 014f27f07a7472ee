import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { startReminderRound } from '../../server/reminders/reminder.service.ts';
import { fieldworkTimelines } from '../../server/fieldwork/fieldwork-timeline.service.ts';
import { journalProgress } from '../../server/respond/progress-changes.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;
beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const DAY = 86_400_000;
const deps = () => ({ models: platform.models, now: platform.clock.now });
const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/&#x27;/g, "'").replace(/&amp;/g, '&').replace(/\s+/g, ' ');

describe('fieldwork over time', () => {
  it('shows completions per day, what each reminder round brought, and the response rate of each institution, from the completion marks alone', async () => {
    // Six contacts at five institutions: contacts 0 and 1 both at institution 0.
    const campaign = await createCampaignWithContacts(platform, { contacts: 6, institutionOf: (i) => (i === 1 ? 0 : i) });
    const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).lean();
    const invitationOf = (i: number) => invitations.find((inv) => String(inv.contact) === String(campaign.contacts[i]!._id))!;
    // A completion as the submit path records it: the compact mark, its entry in the progress journal (no response document is needed to count it).
    const complete = async (i: number) => {
      const at = platform.clock.now();
      await platform.models.Completion.create({ _id: invitationOf(i)._id, campaign: campaign.campaignId, at });
      await journalProgress(platform.models, campaign.campaignId, invitationOf(i)._id, 'completed', at);
      await platform.models.Invitation.updateOne({ _id: invitationOf(i)._id }, { $set: { completedAt: at } });
    };

    await enqueueInvitations(deps(), campaign.campaignId, 'test');
    const sender = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sender.close();
    await complete(0); // day 1 (2 March 2026)
    await complete(2);
    const before = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork`).expect(200);
    expect(text(before.text)).toMatch(/2 March 2026 2 /);

    platform.clock.advance(8 * DAY); // 10 March
    expect(await startReminderRound(deps(), campaign.campaignId, 'test')).toMatchObject({ started: true, round: 1, recipients: 4 });
    platform.clock.advance(DAY); // 11 March: one of the four reminded answers
    await complete(3);

    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork`).expect(200);
    const shown = text(page.text);
    // Kept up to date: the completion after the first page load is counted.
    expect(shown).toMatch(/2 March 2026 2 /);
    expect(shown).toMatch(/11 March 2026 1 /);
    expect(page.text).toMatch(/id="reminder-effect"/);
    expect(shown).toMatch(/Reminder round 1 10 March 2026 4 1 25\.0 %/);
    // Institution 0: two contacts, one completed.
    expect(shown).toMatch(new RegExp(`${campaign.institutions[0]!.name} DE \\(Germany\\) School-based initial VET 2 1 50\\.0 %`));
    expect(shown).toMatch(new RegExp(`${campaign.institutions[4]!.name} DE \\(Germany\\) School-based initial VET 1 0 0\\.0 %`));

    const csv = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork/institutions.csv`).expect(200);
    expect(csv.text.startsWith('\ufeff')).toBe(true);
    expect(csv.text).toContain(`${campaign.institutions[0]!.name},DE (Germany),School-based initial VET,2,1,50.0`);
    expect(await platform.models.Response.countDocuments({ campaign: campaign.campaignId })).toBe(0);
  });

  it('lists institutions lowest rate first, then by name (equal names in the order of their links), and only a completion makes the figures again', async () => {
    // Five contacts at four institutions: contacts 0 and 1 both at institution 0.
    const campaign = await createCampaignWithContacts(platform, { contacts: 5, institutionOf: (i) => [0, 0, 1, 2, 3][i]! });
    const names = ['Beta', 'Alpha', 'Gamma', 'Alpha'];
    for (const [i, name] of names.entries()) await platform.models.Institution.updateOne({ _id: campaign.institutions[i]!._id }, { $set: { name } });
    await noteContactsChange(platform.models);
    const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).lean();
    const invitationOf = (i: number) => invitations.find((inv) => String(inv.contact) === String(campaign.contacts[i]!._id))!;
    const step = async (i: number, kind: 'opened' | 'completed') => {
      const at = platform.clock.now();
      if (kind === 'completed') await platform.models.Completion.create({ _id: invitationOf(i)._id, campaign: campaign.campaignId, at });
      await journalProgress(platform.models, campaign.campaignId, invitationOf(i)._id, kind, at);
    };
    const timelines = fieldworkTimelines(deps());
    const of = async () => (await timelines.of((await platform.models.Campaign.findById(campaign.campaignId).lean())!)).institutions.map((i) => [i.name, i.invited, i.completed]);

    expect(await of()).toEqual([['Alpha', 1, 0], ['Alpha', 1, 0], ['Beta', 2, 0], ['Gamma', 1, 0]]);
    // The two Alphas in the order their links name them: institution 1 (contact 2), then institution 3 (contact 4).
    const first = await timelines.of((await platform.models.Campaign.findById(campaign.campaignId).lean())!);
    expect(first.institutions.map((i) => i.name)).toEqual(['Alpha', 'Alpha', 'Beta', 'Gamma']);

    await step(2, 'opened');
    // A first opening leaves the figures as they were: the same object, not made again.
    expect(await timelines.of((await platform.models.Campaign.findById(campaign.campaignId).lean())!)).toBe(first);

    await step(0, 'completed');
    await step(2, 'completed');
    expect(await of()).toEqual([['Alpha', 1, 0], ['Gamma', 1, 0], ['Beta', 2, 1], ['Alpha', 1, 1]]);

    // A contact's edit leaves the figures as they were; an institution's shows at the next load.
    const kept = await timelines.of((await platform.models.Campaign.findById(campaign.campaignId).lean())!);
    await platform.models.Contact.updateOne({ _id: campaign.contacts[3]!._id }, { $set: { name: 'Renamed' } });
    await noteContactsChange(platform.models, { contacts: [campaign.contacts[3]!._id] });
    expect(await timelines.of((await platform.models.Campaign.findById(campaign.campaignId).lean())!)).toBe(kept);
    await platform.models.Institution.updateOne({ _id: campaign.institutions[2]!._id }, { $set: { name: 'Aardvark' } });
    await noteContactsChange(platform.models, { institutions: [campaign.institutions[2]!._id] });
    expect(await of()).toEqual([['Aardvark', 1, 0], ['Alpha', 1, 0], ['Beta', 2, 1], ['Alpha', 1, 1]]);
  });
});
