import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactListReads, contactListState } from '../../server/campaigns/audience-state.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';
import { createCampaignWithContacts, drainOutbox, statusesOf, watchedSender } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

/** Contacts outside the campaign, so that the whole contact list is long to read. */
async function addOtherContacts(count: number) {
  const institutions = await platform.models.Institution.insertMany(
    Array.from({ length: count }, (_, i) => ({ name: `Other school ${i}`, country: 'AT', type: 'ivet_school', key: institutionKey({ name: `Other school ${i}`, country: 'AT' }) })),
    { lean: true },
  );
  await platform.models.Contact.insertMany(
    institutions.map((institution, i) => ({ institution: institution._id, name: `Other leader ${i}`, email: `other${i}@elsewhere.example`, language: 'en' })),
    { lean: true },
  );
  await noteContactsChange(platform.models);
}

/**
 * One campaign to `recipients` new contacts, one of them made inactive after its invitation was queued, sent by
 * a sender in a fresh process (nothing of the contact list kept) in windows of `window`: it reads the contact list
 * whole `wholeReads` times, mails every other recipient once and skips the inactive one.
 */
async function sendWithOneInactive({ recipients, inactive, window, wholeReads }: { recipients: number; inactive: number; window: number; wholeReads: number }) {
  const { campaignId, contacts, emails } = await createCampaignWithContacts(platform, { contacts: recipients });
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
  await platform.models.Contact.updateOne({ _id: contacts[inactive]!._id }, { $set: { active: false } });
  await noteContactsChange(platform.models, { contacts: [contacts[inactive]!._id] });
  const { deps, policy, close } = await watchedSender(platform, sink.url);
  try {
    await drainOutbox(() => sendDueMessages({ ...deps }, { ...policy, batchSize: window, relayWindow: window, outcomeBatch: window }));
    expect(contactListReads(deps.models).whole).toBe(wholeReads);
  } finally {
    await close();
  }
  const states = await statusesOf(platform.models, campaignId);
  const counts = sink.countsByRecipient();
  for (const { message, state } of states) expect(state, message.to).toBe(message.to === emails[inactive] ? 'skipped' : 'sent');
  for (const [index, email] of emails.entries()) expect(counts.get(email), email).toBe(index === inactive ? undefined : 1);
}

describe("a sender's first pass in a fresh process", () => {
  it('hands the first message to the relay before the whole contact list is read, and still skips an inactive contact', async () => {
    await addOtherContacts(3000);
    // More recipients than are cheaper to read one by one (MAX_JOURNALLED_IDS with their institutions).
    const { campaignId, contacts, emails } = await createCampaignWithContacts(platform, { contacts: 160 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    // Made inactive after its invitation was queued: the pass must see it without the whole list.
    await platform.models.Contact.updateOne({ _id: contacts[2]!._id }, { $set: { active: false } });
    await noteContactsChange(platform.models, { contacts: [contacts[2]!._id] });
    // A connection of its own: nothing of the contact list is kept for it yet, as in a process just started.
    const { deps, policy, close } = await watchedSender(platform, sink.url);
    try {
      sink.hold();
      const pass = drainOutbox(() => sendDueMessages(deps, policy));
      await sink.heldMessages(1);
      // The first message has reached the relay; the whole list (3,160 contacts) is still being read.
      const wholeReadsAtFirstMessage = contactListReads(deps.models).whole;
      sink.release();
      await pass;
      expect(wholeReadsAtFirstMessage).toBe(0);
      // The read went on behind the sending and is kept for the next pass, read once.
      await contactListState(deps.models);
      expect(contactListReads(deps.models).whole).toBe(1);
    } finally {
      await close();
    }
    const states = new Map((await statusesOf(platform.models, campaignId)).map(({ message, state }) => [message.to, state]));
    const counts = sink.countsByRecipient();
    for (const [index, email] of emails.entries()) {
      expect(states.get(email), email).toBe(index === 2 ? 'skipped' : 'sent');
      expect(counts.get(email), email).toBe(index === 2 ? undefined : 1);
    }
  });

  it('sends the windows after the first by the contact list read meanwhile, each message once, and skips a contact made inactive after queueing', async () => {
    await sendWithOneInactive({ recipients: 160, inactive: 130, window: 10, wholeReads: 1 });
  });

  it('reads a few recipients by _id and never the whole list (a round continued near its end), and still skips an inactive contact', async () => {
    await sendWithOneInactive({ recipients: 12, inactive: 7, window: 5, wholeReads: 0 });
  });
});
