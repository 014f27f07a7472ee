import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import type { Models } from '../../server/db/models.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { enqueueMessages } from '../../server/mail/outbox.service.ts';
import { unsubscribe } from '../../server/mail/unsubscribe.service.ts';
import { unsubscribeToken } from '../../server/mail/unsubscribe-token.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { purgeCampaign } from '../../server/privacy/retention.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { confirmationPage } from '../helpers/confirm-send.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { createCampaignWithContacts, drainOutbox, PUBLIC_URL, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  coordinator = await signIn(platform, 'coordinator');
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

type Campaign = Awaited<ReturnType<typeof createCampaignWithContacts>>;
/** What the page shows that the change alters: the count of emails, or whether a label is in its tables. */
type Shown = (page: { emails: number; page: string }) => number | boolean;
const emails: Shown = (p) => p.emails;

/**
 * Writers of the contact list that change no stamp of the campaign itself
 * (or not only): each is made through another connection, as by another
 * process, between two loads of the page; the second load must show it.
 */
const writers: Array<{
  writer: string;
  shown: Shown;
  before: number | boolean;
  after: number | boolean;
  /** Before the first load: what the change needs (written by the app's connection, as earlier history). */
  prepare?: (campaign: Campaign) => Promise<void>;
  change: (models: Models, campaign: Campaign) => Promise<unknown>;
}> = [
  {
    writer: 'an unsubscribe through the one-click link',
    shown: emails,
    before: 3,
    after: 2,
    change: (models, { contacts }) => unsubscribe({ models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeToken(platform.tokenKey, String(contacts[0]!._id))),
  },
  {
    writer: "a CSV import that changes a contact's institution",
    shown: (p) => p.page.includes('Dual or apprenticeship-based initial VET'),
    before: false,
    after: true,
    change: (models, { contacts, institutions }) => {
      const [contact, institution] = [contacts[0]!, institutions[0]!];
      const csv = `institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags\n${institution.name},${institution.country},ivet_dual,,${contact.name},${contact.email},en,\n`;
      return importContacts({ models, now: platform.clock.now }, csv, { commit: true, actor: 'test' });
    },
  },
  {
    writer: 'an erasure of a person',
    shown: emails,
    before: 3,
    after: 2,
    change: (models, { contacts }) =>
      erasePerson(
        { models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set() },
        { email: contacts[0]!.email, mode: 'delete', actor: 'test' },
      ),
  },
  {
    writer: 'a retention purge of the campaign',
    shown: emails,
    before: 3,
    after: 0,
    change: (models, { campaignId }) =>
      purgeCampaign({ models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set(), workerId: 'test' }, campaignId),
  },
  {
    writer: 'removing demo data (a demo contact this campaign invited by mistake)',
    shown: emails,
    before: 3,
    after: 2,
    prepare: async ({ contacts }) => void (await platform.models.Contact.updateOne({ _id: contacts[0]!._id }, { $set: { demo: true } })),
    change: (models) => removeDemoData({ models, now: platform.clock.now }, 'test'),
  },
  {
    writer: 'a relay refusing a recipient at RCPT TO (an email of another campaign)',
    shown: emails,
    before: 3,
    after: 2,
    prepare: async ({ contacts }) => {
      const contact = contacts[0]!;
      const { models } = platform;
      const earlier = await models.Campaign.create({ name: `Earlier ${contact.email}`, strands: ['S1'], opensAt: platform.clock.now(), closesAt: new Date(platform.clock.current.getTime() + 30 * 86_400_000) });
      await createInvitations({ models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, earlier._id, [contact]);
      const link = (await models.Invitation.findOne({ campaign: earlier._id, contact: contact._id }).lean())!;
      await enqueueMessages({ models, now: platform.clock.now }, 'invitation', 0, [{ campaign: earlier._id as Types.ObjectId, contact: contact._id, invitation: link._id, to: contact.email, language: 'en' }]);
      sink.reply(contact.email, 550, '5.1.1 No such user here', 1);
    },
    change: async (models) => {
      const { deps, policy, close } = senderFor({ models, clock: platform.clock, tokenKey: platform.tokenKey }, sink.url);
      try {
        await drainOutbox(() => sendDueMessages(deps, policy));
      } finally {
        close();
      }
    },
  },
];

describe('every writer of the contact list moves its stamp: the kept confirmation page shows the change at the next load', () => {
  it.each(writers)('$writer', async ({ shown, before, after, prepare, change }) => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 3, countries: ['AT'] });
    await prepare?.(campaign);
    expect(shown(await confirmationPage(coordinator, campaign.campaignId))).toBe(before);
    // Kept: a second load computes nothing again (and still shows the same).
    expect(shown(await confirmationPage(coordinator, campaign.campaignId))).toBe(before);
    const other = await otherConnection(platform);
    try {
      await change(other.models, campaign);
    } finally {
      await other.close();
    }
    expect(shown(await confirmationPage(coordinator, campaign.campaignId))).toBe(after);
  });
});
