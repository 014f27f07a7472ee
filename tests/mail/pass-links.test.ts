import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personalLink, regenerateLink, revokeLink } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { createCampaignWithContacts, drainOutbox, PUBLIC_URL, senderFor, statusOf, watchedSender } from '../helpers/mail.ts';
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

/** The text of the last message the sink received for this address, with quoted-printable's soft line breaks joined. */
function lastMessageTo(email: string): string {
  const message = sink.messages.filter((m) => m.to.includes(email)).at(-1);
  if (!message) throw new Error(`no message to ${email}`);
  return message.raw.replace(/=\r?\n/g, '');
}

describe("a sender pass's links", () => {
  it("come from the campaign's copy, not from every link of every campaign, and a link revoked or replaced after queueing is seen", async () => {
    // An earlier campaign's links are in the same collection: reading the links by campaign would read them too.
    await createCampaignWithContacts(platform, { contacts: 4 });
    const { campaignId, contacts, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const linkOf = async (i: number) => (await platform.models.Invitation.findOne({ campaign: campaignId, contact: contacts[i]!._id }).lean())!;
    const linkDeps = { models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL, now: platform.clock.now };
    await revokeLink(linkDeps, (await linkOf(0))._id, 'test');
    const replaced = await linkOf(1);
    const { link: newLink } = await regenerateLink(linkDeps, replaced._id, 0, 'test');

    const { deps, policy, wholeReads, close } = await watchedSender(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    await close();

    expect(wholeReads).not.toContain('invitations');
    expect(await statusOf(platform.models, campaignId, emails[0]!)).toMatchObject({ state: 'skipped' });
    expect(sink.countsByRecipient().get(emails[0]!)).toBeUndefined();
    // The replaced link's email carries the new link, not the one it replaced.
    const text = lastMessageTo(emails[1]!);
    expect(text).toContain(newLink);
    expect(text).not.toContain(personalLink(linkDeps, { _id: replaced._id, tokenGeneration: 0 }));
    for (const email of emails.slice(1)) expect(sink.countsByRecipient().get(email)).toBe(1);
    const untouched = await linkOf(2);
    expect(lastMessageTo(emails[2]!)).toContain(personalLink(linkDeps, untouched));
  });

  it('a link revoked or replaced during a pass, before its window, is seen by that window', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 20 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const linkDeps = { models: platform.models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL, now: platform.clock.now };
    const { deps, policy, close } = senderFor(platform, sink.url);
    sink.hold();
    let revoked: string | undefined;
    let replaced: { email: string; link: string; old: string } | undefined;
    try {
      // Windows of two: two messages at the relay, and two windows' claims ahead (six claims, the bound), the rest of the 20 to come.
      // Facts read for every window: the link changes are looked up with them, at most that old (factsMaxAgeMs).
      const pass = sendDueMessages(deps, { ...policy, batchSize: 2, factsMaxAgeMs: 0 });
      await sink.heldMessages(2);
      await expect.poll(() => platform.models.OutboxClaim.countDocuments({ campaign: campaignId })).toBe(6);
      const claimed = new Set((await platform.models.OutboxClaim.find({ campaign: campaignId }).lean()).map((c) => String(c.message)));
      const [first, second] = (await platform.models.Outbox.find({ campaign: campaignId }).lean()).filter((m) => !claimed.has(String(m._id)));
      await revokeLink(linkDeps, first!.invitation!, 'test');
      const reissued = await regenerateLink(linkDeps, second!.invitation!, 0, 'test');
      revoked = first!.to;
      replaced = { email: second!.to, link: reissued.link, old: personalLink(linkDeps, { _id: second!.invitation!, tokenGeneration: 0 }) };
      sink.release();
      await pass;
    } finally {
      sink.release();
    }
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    expect(await statusOf(platform.models, campaignId, revoked!)).toMatchObject({ state: 'skipped' });
    expect(sink.countsByRecipient().get(revoked!)).toBeUndefined();
    expect(lastMessageTo(replaced!.email)).toContain(replaced!.link);
    expect(lastMessageTo(replaced!.email)).not.toContain(replaced!.old);
    for (const email of emails.filter((e) => e !== revoked)) expect(sink.countsByRecipient().get(email)).toBe(1);
  });
});
