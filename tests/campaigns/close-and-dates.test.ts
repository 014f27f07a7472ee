import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../server/cli/commands.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await platform.close();
});

describe('closing a campaign early', () => {
  it('is previewed, then confirmed once; respondents then see the closed page in their language', async () => {
    const { campaignId, path } = await createInvitedContact(platform, { language: 'fr' });
    await respondent(platform, path, '').open().expect(200);

    const preview = await coordinator.agent.get(`/admin/campaigns/${campaignId}/close`).expect(200);
    expect(preview.text).toContain('1 personal link stops accepting answers');
    expect(preview.text).toContain('0 respondents have submitted');
    expect(preview.text).toContain('closed on 2 March 2026');
    // The preview changes nothing.
    expect((await platform.models.Campaign.findById(campaignId).lean())?.closedAt).toBeUndefined();

    expect((await coordinator.agent.post(`/admin/campaigns/${campaignId}/close`).type('form').send({ confirm: 'yes' })).status).toBe(403);
    expect((await coordinator.agent.post(`/admin/campaigns/${campaignId}/close`).type('form').send({ _csrf: coordinator.csrf })).status).toBe(400);
    await request(platform.app).get(path).expect(200);

    const closing = () => coordinator.agent.post(`/admin/campaigns/${campaignId}/close`).type('form').send({ confirm: 'yes', _csrf: coordinator.csrf });
    const [first, second] = await Promise.all([closing(), closing()]);
    expect([first.status, second.status]).toEqual([303, 303]);
    expect((await platform.models.Campaign.findById(campaignId).lean())?.closedAt).toEqual(platform.clock.now());
    expect(await platform.models.AuditEntry.countDocuments({ action: 'campaign.close', target: `campaign:${campaignId}` })).toBe(1);
    expect((await coordinator.agent.get(first.headers.location!)).text).toContain('The campaign is closed');

    const closed = await request(platform.app).get(path).set('Accept', 'text/html');
    expect(closed.status).toBe(410);
    expect(closed.text).toContain('<html lang="fr">');
    expect(closed.text).toContain('Cette enquête est close');
    expect(closed.text).toContain('a pris fin le 2 mars 2026');

    const list = await coordinator.agent.get('/admin/campaigns').expect(200);
    expect(list.text).toContain('(closed early on 2 March 2026)');
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}`).expect(200)).text).toContain('Closed early on 2 March 2026.');
  });

  it('a campaign marked closed at its close date (as seed:demo marks past waves) ended on its last day: nowhere "closed early"', async () => {
    const { campaignId, path } = await createInvitedContact(platform, { language: 'de' });
    const closesAt = new Date('2026-03-01T00:00:00Z');
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { name: 'Ended wave', opensAt: new Date('2026-01-05T00:00:00Z'), closesAt, closedAt: closesAt } });

    const list = await coordinator.agent.get('/admin/campaigns').expect(200);
    const row = list.text.split('<tr>').find((line) => line.includes('Ended wave'))!;
    expect(row).toContain('<td class="date">28 February 2026</td>');
    expect(row).not.toContain('closed early');
    const page = await coordinator.agent.get(`/admin/campaigns/${campaignId}/close`).expect(200);
    expect(page.text).toContain('This campaign is already closed (its last day was 28 February 2026).');
    const own = await coordinator.agent.get(`/admin/campaigns/${campaignId}`).expect(200);
    expect(own.text).toContain('Closed: its last day was 28 February 2026.');
    expect(own.text).not.toContain('Closed early');
    const lines: string[] = [];
    await runCommand(['campaign:list'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: (l) => lines.push(l) });
    const line = lines.find((l) => l.includes('Ended wave'))!;
    expect(line).toContain('5 January 2026 – 28 February 2026');
    expect(line).not.toContain('closed early');
    // The respondent's closed page names the last day, not the day after.
    const closed = await request(platform.app).get(path).set('Accept', 'text/html');
    expect(closed.status).toBe(410);
    expect(closed.text).toContain('28. Februar 2026');
    expect(closed.text).not.toContain('1. März 2026');
  });

  it('a reviewer can neither see the closing page nor close', async () => {
    const { campaignId } = await createInvitedContact(platform);
    const reviewer = await signIn(platform, 'reviewer');
    expect((await reviewer.agent.get(`/admin/campaigns/${campaignId}/close`)).status).toBe(403);
    expect((await reviewer.agent.post(`/admin/campaigns/${campaignId}/close`).type('form').send({ confirm: 'yes', _csrf: reviewer.csrf })).status).toBe(403);
    expect((await platform.models.Campaign.findById(campaignId).lean())?.closedAt).toBeUndefined();
  });
});

describe('the last day to answer', () => {
  it('is the same day in the email, on the confirmation page, in the campaign list and in the command-line tool', async () => {
    const { campaignId, path, invitation } = await createInvitedContact(platform);
    // As the campaign form stores "last day 31 March": the close is the first moment of 1 April (UTC).
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { name: 'Dated wave', closesAt: new Date('2026-04-01T00:00:00Z') } });

    const r = respondent(platform, path, invitation.tokenHash);
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    const confirmation = await r.open().expect(200);
    expect(confirmation.text).toContain('You can correct your answers until 31 March 2026');
    expect(confirmation.text).not.toContain('1 April 2026');

    const list = await coordinator.agent.get('/admin/campaigns').expect(200);
    const row = list.text.split('<tr>').find((line) => line.includes('Dated wave'))!;
    expect(row).toContain('<td class="date">1 March 2026</td><td class="date">31 March 2026</td>');

    const preview = await coordinator.agent.get(`/admin/campaigns/${campaignId}/preview`).expect(200);
    expect(preview.text).toContain('31 March 2026');
    expect(preview.text).not.toContain('1 April 2026');

    const lines: string[] = [];
    await runCommand(['campaign:list'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: (line) => lines.push(line) });
    expect(lines.find((line) => line.includes('Dated wave'))).toContain('1 March 2026 – 31 March 2026\t1 link');
  });

  it('the audit log shows readable dates, not raw JavaScript or ISO dates', async () => {
    const audit = await coordinator.agent.get('/admin/audit').expect(200);
    expect(audit.text).toMatch(/<td>2 March 2026, 09:00 UTC<\/td>/);
    expect(audit.text).not.toMatch(/<td>(\d{4}-\d{2}-\d{2}[ T]|\w{3} \w{3} \d)/);
  });
});
