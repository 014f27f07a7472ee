import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setContactActive, updateInstitution } from '../../server/institutions/institution.service.ts';
import { recordBounces } from '../../server/mail/bounce.service.ts';
import { readAudience } from '../../server/campaigns/audience.service.ts';
import { campaignLinks } from '../../server/invitations/link-population.ts';
import { invitationDryRun, noteInvitationEmailsToCome } from '../../server/mail/invitation-mail.service.ts';
import { enqueueMessages, insertMessages, liftSuppression } from '../../server/mail/outbox.service.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { confirmationPage } from '../helpers/confirm-send.ts';
import { otherConnection } from '../helpers/other-connection.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;

beforeAll(async () => {
  platform = await startTestPlatform({ appDeps: { queueInvitations: () => undefined } });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const confirmation = (campaignId: Types.ObjectId) => confirmationPage(coordinator, campaignId);

describe('the confirmation page before "Send the invitations" keeps its counts', () => {
  it('reads the links, contacts and emails once, and a change made through another connection shows at the next load', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 6, countries: ['AT', 'FR'] });
    expect((await confirmation(campaignId)).emails).toBe(6);
    const other = await otherConnection(platform);
    try {
      // Loaded again and again (here on the other connection), only the change stamps are read.
      expect((await invitationDryRun(other, campaignId)).emails).toBe(6);
      const readsOnce = other.read.length;
      expect(other.read).toContain('contacts');
      expect((await invitationDryRun(other, campaignId)).emails).toBe(6);
      expect((await invitationDryRun(other, campaignId)).emails).toBe(6);
      expect(other.read.slice(readsOnce).every((c) => c === 'change_stamps')).toBe(true);

      const deps = { models: other.models, now: () => platform.clock.now() };
      // A bounce suppresses an address (the contact list's stamp).
      const bounced = await recordBounces(deps, [contacts[0]!.email], 'test');
      expect(bounced.added).toBe(1);
      expect((await confirmation(campaignId)).emails).toBe(5);
      // Lifting it brings the contact back.
      const suppression = (await other.models.Suppression.findOne({ email: contacts[0]!.email }).lean())!;
      expect((await liftSuppression(deps, suppression._id)).lifted).toBe(true);
      expect((await confirmation(campaignId)).emails).toBe(6);
      // An invitation email queued elsewhere (the campaign's "rounds" stamp).
      const link = (await other.models.Invitation.findOne({ campaign: campaignId, contact: contacts[1]!._id }).lean())!;
      await enqueueMessages(deps, 'invitation', 0, [{ campaign: campaignId, contact: contacts[1]!._id, invitation: link._id, to: contacts[1]!.email, language: 'en' }]);
      expect((await confirmation(campaignId)).emails).toBe(5);
      // A contact deactivated (its link revoked: the "links" stamp).
      await setContactActive(deps, contacts[2]!._id, false, 'test');
      expect((await confirmation(campaignId)).emails).toBe(4);
      // An institution moved to another country: the table by country follows.
      const moved = (await other.models.Institution.findById(contacts[3]!.institution).lean())!;
      const before = (await confirmation(campaignId)).page;
      await updateInstitution(deps, moved._id, { name: moved.name, country: 'DE', type: 'ivet_school', erasmusId: '' }, 'test');
      const after = (await confirmation(campaignId)).page;
      expect(before).not.toContain('DE (Germany)');
      expect(after).toContain('DE (Germany)');
    } finally {
      await other.close();
    }
  });

  it('reads no email for a campaign that never had one queued, and counts the emails of a writer stopped before its note after them', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 4, countries: ['AT'] });
    const other = await otherConnection(platform);
    try {
      expect((await invitationDryRun(other, campaignId)).emails).toBe(4);
      // The links from their compact copy (link-copy.store.ts).
      expect(other.read).toContain('link_copies');
      expect(other.read).not.toContain('outbox');

      // A writer notes that emails are coming, writes one, and stops before enqueueMessages' note after it.
      const link = (await other.models.Invitation.findOne({ campaign: campaignId, contact: contacts[0]!._id }).lean())!;
      await noteInvitationEmailsToCome(other.models, campaignId);
      const at = platform.clock.now();
      const message = { _id: new Types.ObjectId(), campaign: campaignId, contact: contacts[0]!._id, invitation: link._id, kind: 'invitation' as const, round: 0, to: contacts[0]!.email, language: 'en' as const, nextAttemptAt: at, createdAt: at, updatedAt: at };
      expect(await insertMessages({ models: other.models, now: () => at }, [message])).toBe(1);
      const dryRun = await invitationDryRun(other, campaignId);
      expect(dryRun.emails).toBe(3);
      expect(dryRun.alreadyQueued).toBe(1);
      expect((await confirmation(campaignId)).emails).toBe(3);
    } finally {
      await other.close();
    }
  });

  it('shown after the campaign page, its first load reads no contact, institution or link again, nor does the count of links on the campaign page, and a change since is still counted', async () => {
    const { campaignId, contacts } = await createCampaignWithContacts(platform, { contacts: 5, countries: ['AT', 'FR'] });
    const other = await otherConnection(platform);
    try {
      // The campaign page reads the audience (every contact and institution, the campaign's links).
      const campaign = (await other.models.Campaign.findById(campaignId).lean())!;
      await readAudience(other.models, campaign);
      const before = other.read.length;
      // The page's count of links comes from the same read.
      expect((await campaignLinks(other.models, campaignId)).total).toBe(5);
      const dryRun = await invitationDryRun(other, campaignId);
      expect(dryRun.emails).toBe(5);
      expect(dryRun.byCountry.map((c) => c.label).sort()).toEqual(['AT (Austria)', 'FR (France)']);
      expect(other.read.slice(before).every((c) => c === 'change_stamps')).toBe(true);

      // A contact deactivated meanwhile (elsewhere): the contact list's and the links' stamps moved, so it is read again.
      await setContactActive({ models: platform.models, now: () => platform.clock.now() }, contacts[0]!._id, false, 'test');
      const again = other.read.length;
      expect((await invitationDryRun(other, campaignId)).emails).toBe(4);
      expect(other.read.slice(again)).toEqual(expect.arrayContaining(['link_copies', 'contacts']));
    } finally {
      await other.close();
    }
  });
});
