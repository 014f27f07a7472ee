import { parse } from 'csv-parse/sync';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personalLink } from '../../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, senderFor } from '../helpers/mail.ts';
import { respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let sink: SmtpSink;
let coordinator: SignedInAgent;

beforeAll(async () => {
  platform = await startTestPlatform();
  sink = await startSmtpSink();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const FORMULA_NAME = '=HYPERLINK("http://evil.example","Click me")';

/**
 * Six contacts, invitations sent through the SMTP sink (the last one refused
 * with a 550), then, through the respondent path: contacts 0, 1 and 4 open
 * and submit, 2 opens and saves a draft, 3 (named like a formula) only opens,
 * 5 does nothing. Countries and types alternate:
 * 0 DE school, 1 FR school, 2 DE dual, 3 FR dual, 4 DE school, 5 FR school.
 */
async function campaignInTheField() {
  const campaign = await createCampaignWithContacts(platform, { contacts: 6, countries: ['DE', 'FR'], types: ['ivet_school', 'ivet_dual'] });
  await platform.models.Campaign.updateOne({ _id: campaign.campaignId }, { $set: { strands: ['S1', 'S2', 'S3', 'S4'] } });
  await platform.models.Contact.updateOne({ _id: campaign.contacts[3]!._id }, { $set: { name: FORMULA_NAME } });
  sink.reply(campaign.emails[5]!, 550, 'No such mailbox');
  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaign.campaignId, 'test');
  const sender = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
  sender.close();

  const invitations = await platform.models.Invitation.find({ campaign: campaign.campaignId }).lean();
  const respondentOf = (i: number) => {
    const invitation = invitations.find((inv) => String(inv.contact) === String(campaign.contacts[i]!._id))!;
    return { invitation, r: respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation), invitation.tokenHash) };
  };
  for (const i of [0, 1, 4]) {
    const { r } = respondentOf(i);
    await r.open().expect(200);
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
  }
  await respondentOf(2).r.open().expect(200);
  // An answer of the respondent's own (the pre-filled country alone would not start the response).
  await respondentOf(2).r.saveDraft({ data: { P1: 'DE', P3: 'public' }, pageNo: 0, baseRevision: 0, language: 'en' }).expect(200);
  await respondentOf(3).r.open().expect(200);
  return { ...campaign, respondentOf };
}

const countOf = (html: string, name: string) => new RegExp(`data-count="${name}">([^<]*)<`).exec(html)?.[1];
const segmentRow = (html: string, segment: string) => new RegExp(`<tr( class="lagging")? data-segment="${segment}">(.*?)</tr>`).exec(html);

describe('fieldwork view', () => {
  it('counts invited, delivered, failed, opened, started and completed, and the response rate by country × institution type with the lagging segments marked', async () => {
    const campaign = await campaignInTheField();
    // A response whose invitation update was lost still counts as completed.
    await platform.models.Invitation.updateOne({ _id: campaign.respondentOf(4).invitation._id }, { $unset: { completedAt: 1 } });

    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork`).expect(200);
    expect(countOf(page.text, 'invited')).toBe('6');
    expect(countOf(page.text, 'delivered')).toBe('5');
    expect(countOf(page.text, 'failed')).toBe('1');
    expect(countOf(page.text, 'opened')).toBe('5');
    // Those who completed began answering too, even if they never saved a draft.
    expect(countOf(page.text, 'started')).toBe('4');
    expect(countOf(page.text, 'completed')).toBe('3');
    expect(countOf(page.text, 'rate')).toBe('50.0 %');

    expect(page.text).toMatch(/more than 10 percentage points below the campaign&#x27;s overall rate, or below half of it/);
    const deSchool = segmentRow(page.text, 'DE\\|ivet_school');
    expect(deSchool?.[1]).toBeUndefined();
    expect(deSchool?.[2]).toContain('100.0 %');
    const frSchool = segmentRow(page.text, 'FR\\|ivet_school');
    expect(frSchool?.[1]).toBeUndefined();
    expect(frSchool?.[2]).toContain('50.0 %');
    // One or two invitations per segment: too few to judge (tests/fieldwork/lagging-and-csv.test.ts has the rule at work).
    expect(segmentRow(page.text, 'DE\\|ivet_dual')?.[1]).toBeUndefined();
    expect(segmentRow(page.text, 'FR\\|ivet_dual')?.[2]).toContain('Too few to judge');

    // Who has not answered: 2, 3 and 5, names escaped.
    const listed = campaign.emails.filter((email) => page.text.includes(email));
    expect(listed.sort()).toEqual([campaign.emails[2], campaign.emails[3], campaign.emails[5]].sort());
    expect(page.text).not.toContain('=HYPERLINK("');
  });

  it('the non-respondent CSV leaves out completed contacts, neutralises a name that is a formula, and is recorded in the audit log', async () => {
    const campaign = await campaignInTheField();
    const response = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork/nonrespondents.csv`).expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    expect(response.headers['content-disposition']).toMatch(/attachment/);
    // A byte-order mark first, so spreadsheets read the UTF-8 names correctly.
    expect(response.text.startsWith('\ufeff')).toBe(true);
    const rows: string[][] = parse(response.text, { bom: true });
    expect(rows[0]).toEqual(['institution', 'contact', 'email', 'country', 'institution_type', 'opened', 'started', 'unsubscribed']);
    const byEmail = new Map(rows.slice(1).map((row) => [row[2], row]));
    expect([...byEmail.keys()].sort()).toEqual([campaign.emails[2], campaign.emails[3], campaign.emails[5]].sort());
    expect(byEmail.get(campaign.emails[3]!)?.[1]).toBe(`'${FORMULA_NAME}`);
    expect(byEmail.get(campaign.emails[2]!)?.slice(5)).toEqual(['yes', 'yes', 'no']);
    expect(byEmail.get(campaign.emails[5]!)?.slice(5)).toEqual(['no', 'no', 'no']);
    // No cell of the export starts a formula.
    expect(rows.flat().some((cell) => /^[=+\-@]/.test(cell))).toBe(false);

    const audit = await platform.models.AuditEntry.find({ action: 'export.nonrespondents', target: `campaign:${campaign.campaignId}` }).lean();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe(coordinator.user.email);
  });

  it('a reviewer gets 403 on the fieldwork page and the CSV, and someone not signed in is sent to sign in', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 1 });
    const reviewer = await signIn(platform, 'reviewer');
    await reviewer.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork`).expect(403);
    const csv = await reviewer.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork/nonrespondents.csv`).expect(403);
    expect(csv.text).not.toContain(campaign.emails[0]);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'export.nonrespondents', target: `campaign:${campaign.campaignId}` })).toBe(0);
    const anonymous = await request(platform.app).get(`/admin/campaigns/${campaign.campaignId}/fieldwork`);
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.location).toMatch(/^\/login/);
  });

  it('the campaign page links to its fieldwork view', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 1 });
    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}`).expect(200);
    expect(page.text).toContain(`href="/admin/campaigns/${campaign.campaignId}/fieldwork"`);
  });
});
