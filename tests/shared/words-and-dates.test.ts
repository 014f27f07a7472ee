import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { startReminderRound } from '../../server/reminders/reminder.service.ts';
import { plural } from '../../server/shared/plural.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const ISO_DATE = /\b\d{4}-\d\d-\d\d\b/;
const READABLE_MOMENT = /\b\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC\b/;
const text = (html: string) => html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' ').replace(/&#x27;/g, "'").replace(/\s+/g, ' ');

describe('counts in words', () => {
  it('say "1 response", "2 responses"', () => {
    expect(plural(1, 'response', 'responses')).toBe('1 response');
    expect(plural(0, 'response', 'responses')).toBe('0 responses');
    expect(plural(2, 'response', 'responses')).toBe('2 responses');
  });

  it('the records of processing and the send confirmation use the singular for one', async () => {
    const { campaignId, path, invitation } = await createInvitedContact(platform, { strands: ['S1'] });
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { name: 'Singular wave' } });
    await respondent(platform, path, invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    const records = text((await coordinator.agent.get('/admin/privacy/records').expect(200)).text);
    const singular = records.slice(records.indexOf('Singular wave'));
    expect(singular).toMatch(/1 contact, 1 personal link, 0 drafts, 1 identified and 0 anonymous responses, 1 revision, 0 emails, 0 consents/);
    expect(records).toMatch(/Coordinators \(1 account\)/);

    const one = await createCampaignWithContacts(platform, { contacts: 1 });
    const confirm = text((await coordinator.agent.get(`/admin/campaigns/${one.campaignId}/send`).expect(200)).text);
    expect(confirm).toMatch(/You are about to send 1 invitation email to 1 contact at 1 institution/);
  });
});

describe('dates', () => {
  it('are written in the one readable format on the privacy pages and in a reminder refusal', async () => {
    const page = text((await coordinator.agent.get('/admin/privacy').expect(200)).text);
    expect(page).not.toMatch(ISO_DATE);
    const records = text((await coordinator.agent.get('/admin/privacy/records').expect(200)).text);
    expect(records).not.toMatch(ISO_DATE);
    expect(records).toMatch(/\d{1,2} [A-Z][a-z]+ \d{4} to \d{1,2} [A-Z][a-z]+ \d{4}/);

    const { contact } = await createInvitedContact(platform);
    const report = await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: contact.email, format: 'html' }).expect(200);
    expect(text(report.text)).toMatch(new RegExp(`Generated on ${READABLE_MOMENT.source}`));
    expect(report.text).not.toMatch(/GMT/);

    const campaign = await createCampaignWithContacts(platform, { contacts: 1 });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
    const refused = await startReminderRound({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
    expect(refused.started).toBe(false);
    const reason = (refused as { reason: string }).reason;
    expect(reason).toMatch(READABLE_MOMENT);
    expect(reason).not.toMatch(ISO_DATE);
  });
});
