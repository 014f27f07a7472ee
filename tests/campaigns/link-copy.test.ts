import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvitations, regenerateLink, revokeLink } from '../../server/invitations/invitation.service.ts';
import { beginLinkChanges, finishLinkChanges, readCampaignLinkEntries, WRITER_GONE_MS } from '../../server/invitations/link-copy.store.ts';
import { invitationDryRun } from '../../server/mail/invitation-mail.service.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { confirmationPage } from '../helpers/confirm-send.ts';
import { createCampaignWithContacts, PUBLIC_URL } from '../helpers/mail.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const linkDeps = () => ({ models: platform.models, now: () => platform.clock.now(), tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL });

/** The confirmation's dry run as a process that has read nothing before computes it: its count, and whether it read the invitations collection. */
async function firstLoad(campaignId: Types.ObjectId) {
  const fresh = await otherConnection(platform);
  try {
    const dryRun = await invitationDryRun(fresh, campaignId);
    return { emails: dryRun.emails, readInvitations: fresh.read.includes('invitations'), wholeReads: [...fresh.wholeReads] };
  } finally {
    await fresh.close();
  }
}

/** A contact with an institution of its own, not yet invited. */
async function newContact(campaignId: Types.ObjectId, name: string) {
  const institution = await platform.models.Institution.create({ name: `${name} school ${campaignId}`, country: 'AT', type: 'ivet_school', key: `${name}-${campaignId}` });
  return platform.models.Contact.create({ institution: institution._id, name, email: `${name}-${campaignId}@school.example`.toLowerCase(), language: 'en' });
}

describe("the campaign's links are read from their compact copy", () => {
  it('the first load of the confirmation page, with nothing read before, reads no invitation, and shows a link revoked, erased or added at the next first load', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 5, countries: ['AT', 'FR'] });
    // Another campaign's links are in the same collection: a filter on the campaign would read them too.
    await createCampaignWithContacts(platform, { contacts: 3 });

    const first = await firstLoad(campaignId);
    expect(first).toMatchObject({ emails: 5, readInvitations: false });
    // The copy and the change numbers are found by _id alone, the only look-up the embedded engine answers from an index.
    for (const collection of ['invitations', 'link_copies', 'link_changes']) expect(first.wholeReads).not.toContain(collection);
    expect((await confirmationPage(coordinator, campaignId)).emails).toBe(5);

    const link = (await platform.models.Invitation.findOne({ campaign: campaignId, contact: contacts[0]!._id }).lean())!;
    await revokeLink(linkDeps(), link._id, 'test');
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 4, readInvitations: false });
    expect((await confirmationPage(coordinator, campaignId)).emails).toBe(4);

    await erasePerson({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions: new Set<string>() }, { email: contacts[1]!.email, mode: 'delete', actor: 'test' });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 3, readInvitations: false });
    // The erased contact's link is gone from the copy itself, not only from the count.
    const copies = await platform.models.LinkCopy.find({}).lean();
    const erasedId = Buffer.from(contacts[1]!._id.id);
    expect(copies.some((c) => c.links && Buffer.from((c.links as unknown as { value: () => Uint8Array }).value()).includes(erasedId))).toBe(false);

    const added = await newContact(campaignId, 'Added');
    await createInvitations(linkDeps(), campaignId, [added]);
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 4, readInvitations: false });
    expect((await confirmationPage(coordinator, campaignId)).emails).toBe(4);
  });

  it('a writer stopped between its write and its closing note makes the next loads read the links afresh, right, until it is done or long gone', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 4 });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 4, readInvitations: false });

    // createInvitations' steps by hand: the change claimed, one link written, then the process dies.
    const late = await newContact(campaignId, 'Late');
    const writer = await beginLinkChanges(platform.models, [campaignId]);
    const _id = new Types.ObjectId();
    await platform.models.Invitation.create({ _id, campaign: campaignId, contact: late._id, institution: late.institution, language: 'en', tokenHash: `by-hand-${_id}` });

    expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: true });
    // Nothing stored under a writer at work: the next load reads again, and still counts its link.
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: true });

    // Long after, the writer counts as gone: one more read, which the copy then keeps.
    const claimed = (await platform.models.LinkChange.find({ campaign: campaignId }).lean()).find((c) => !c.doneAt)!;
    await platform.models.LinkChange.updateOne({ _id: claimed._id }, { $set: { at: new Date(Date.now() - WRITER_GONE_MS - 1000) } });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: true });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: false });

    // Done after all (it was slow, not gone, and wrote nothing more): the copy stands.
    await finishLinkChanges(platform.models, writer);
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: false });
  });

  it('a second process making links while another writer is at work: both show, and the copy is not trusted before both are done', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 3, readInvitations: false });
    const mine = [await newContact(campaignId, 'First'), await newContact(campaignId, 'Second')];
    const theirs = await newContact(campaignId, 'Theirs');
    const second = await otherConnection(platform);
    try {
      // This process writes its links in steps; between its first and its second, the other process makes its link and finishes.
      await createInvitations(linkDeps(), campaignId, mine, {
        step: 1,
        onStep: async (_links, left) => {
          if (left !== 1) return;
          await createInvitations({ ...linkDeps(), models: second.models }, campaignId, [theirs]);
          // The other writer finished first: a load now sees both finished links and this writer's first, not a copy missing any.
          expect(await firstLoad(campaignId)).toMatchObject({ emails: 5, readInvitations: true });
        },
      });
    } finally {
      await second.close();
    }
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 6, readInvitations: true });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 6, readInvitations: false });
    expect((await confirmationPage(coordinator, campaignId)).emails).toBe(6);
  });

  it('an existing database, with links and no copy yet, is read once and then kept, nothing lost', async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 4 });
    // As before the copy existed: no change numbers, no copy.
    await platform.models.LinkCopy.deleteMany({ _id: { $regex: `^${campaignId}` } });
    await platform.models.LinkChange.deleteMany({ campaign: campaignId });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 4, readInvitations: true });
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 4, readInvitations: false });
    expect(await platform.models.Invitation.countDocuments({ campaign: campaignId })).toBe(4);
  });

  it("a copy of the layout without token generations, as an earlier version stored it, is read afresh once and replaced", async () => {
    const { campaignId } = await createCampaignWithContacts(platform, { contacts: 3 });
    const regenerated = (await platform.models.Invitation.findOne({ campaign: campaignId }).lean())!;
    await regenerateLink(linkDeps(), regenerated._id, 0, 'test');
    // The earlier layout: 38 bytes a link (no generation), under "<campaign>@<n>".
    const pointer = (await platform.models.LinkCopy.findById(String(campaignId)).lean())!;
    const ids = (await platform.models.LinkCopy.find({}, { _id: 1 }).lean()).map((c) => c._id).filter((id) => id.startsWith(`${campaignId}@`));
    expect(ids).toEqual([`${campaignId}@${pointer.upTo}g`]);
    const current = (await platform.models.LinkCopy.findById(ids[0]).lean())!;
    const bytes = Buffer.from((current.links as unknown as { value: () => Uint8Array }).value());
    const earlier = Buffer.concat(Array.from({ length: bytes.length / 42 }, (_, i) => bytes.subarray(i * 42, i * 42 + 38)));
    await platform.models.LinkCopy.deleteOne({ _id: ids[0] });
    await platform.models.LinkCopy.collection.insertOne({ _id: `${campaignId}@${pointer.upTo}`, upTo: pointer.upTo, parts: 1, build: current.build, links: earlier } as never);

    const read = await readCampaignLinkEntries(platform.models, campaignId);
    expect(read.find((l) => String(l._id) === String(regenerated._id))?.generation).toBe(1);
    expect(read.map((l) => l.generation).sort()).toEqual([0, 0, 1]);
    const after = (await platform.models.LinkCopy.find({}, { _id: 1 }).lean()).map((c) => c._id).filter((id) => id.startsWith(`${campaignId}@`));
    expect(after).toEqual([`${campaignId}@${pointer.upTo}g`]);
    expect(await firstLoad(campaignId)).toMatchObject({ emails: 3, readInvitations: false });
  });
});
