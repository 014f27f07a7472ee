import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignFieldwork, LAG_MIN_INVITED } from '../../server/fieldwork/fieldwork.service.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts } from '../helpers/mail.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

const segmentRow = (html: string, segment: string) => new RegExp(`<tr( class="lagging")? data-segment="${segment}">(.*?)</tr>`).exec(html);

/** Puts the campaign's institutions in the given countries, in order, and marks the first `completed` of each country completed. */
async function spread(campaign: Awaited<ReturnType<typeof createCampaignWithContacts>>, plan: Array<{ country: string; invited: number; completed: number }>) {
  let i = 0;
  for (const { country, invited, completed } of plan) {
    for (let n = 0; n < invited; n++, i++) {
      await platform.models.Institution.updateOne({ _id: campaign.institutions[i]!._id }, { $set: { country } });
      if (n < completed) await platform.models.Invitation.updateOne({ contact: campaign.contacts[i]!._id }, { $set: { completedAt: platform.clock.now() } });
    }
  }
}

describe('the lagging rule', () => {
  it(`marks a segment lagging only when it has at least ${LAG_MIN_INVITED} invitations; a smaller one is too small to judge`, async () => {
    expect(LAG_MIN_INVITED).toBeGreaterThan(1);
    const campaign = await createCampaignWithContacts(platform, { contacts: 22, countries: ['DE'], types: ['ivet_school'] });
    // DE 10 invited, 8 completed; FR 10 invited, 2 completed (lagging); AT 2 invited, 0 completed (too small).
    await spread(campaign, [
      { country: 'DE', invited: 10, completed: 8 },
      { country: 'FR', invited: 10, completed: 2 },
      { country: 'AT', invited: 2, completed: 0 },
    ]);
    const page = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork`).expect(200);
    expect(segmentRow(page.text, 'FR\\|ivet_school')?.[1]).toBe(' class="lagging"');
    expect(segmentRow(page.text, 'DE\\|ivet_school')?.[1]).toBeUndefined();
    const small = segmentRow(page.text, 'AT\\|ivet_school');
    expect(small?.[1]).toBeUndefined();
    expect(small?.[2]).toMatch(/Too few to judge/);
    expect(page.text).toMatch(new RegExp(`segments with fewer than ${LAG_MIN_INVITED} invitations are not judged`));
  });
});

describe('the list of who has not answered', () => {
  it('is ordered by country, institution type and institution name, links of equal institutions in their own order, and lists the first n when asked', async () => {
    // Seven contacts at six institutions: contacts 2 and 5 at one, 4 at another of the same name, country and type; 6's removed.
    const campaign = await createCampaignWithContacts(platform, { contacts: 7, institutionOf: (i) => [0, 1, 2, 3, 4, 2, 5][i]! });
    const set = (i: number, country: string, type: string, name: string) => platform.models.Institution.updateOne({ _id: campaign.institutions[i]!._id }, { $set: { country, type, name } });
    await set(0, 'DE', 'ivet_school', 'Beta');
    await set(1, 'AT', 'ivet_school', 'Zeta');
    await set(2, 'DE', 'ivet_school', 'Alpha');
    await set(3, 'AT', 'ivet_dual', 'Alpha');
    await set(4, 'DE', 'ivet_school', 'Alpha');
    await platform.models.Institution.deleteOne({ _id: campaign.institutions[5]!._id });
    await noteContactsChange(platform.models);
    await platform.models.Invitation.updateOne({ contact: campaign.contacts[1]!._id }, { $set: { completedAt: platform.clock.now() } });

    const fieldwork = await campaignFieldwork({ models: platform.models }, campaign.campaignId);
    expect(fieldwork.nonrespondentCount).toBe(6);
    expect(fieldwork.nonrespondents().map((n) => [n.contactName, n.country, n.institutionType, n.institutionName])).toEqual([
      ['Leader 6', '?', '?', '(institution removed)'],
      ['Leader 3', 'AT', 'ivet_dual', 'Alpha'],
      ['Leader 2', 'DE', 'ivet_school', 'Alpha'],
      ['Leader 4', 'DE', 'ivet_school', 'Alpha'],
      ['Leader 5', 'DE', 'ivet_school', 'Alpha'],
      ['Leader 0', 'DE', 'ivet_school', 'Beta'],
    ]);
    expect(fieldwork.nonrespondents(2).map((n) => n.contactName)).toEqual(['Leader 6', 'Leader 3']);
    expect(fieldwork.segments.map((s) => [s.country, s.institutionType, s.invited, s.completed])).toEqual([
      ['?', '?', 1, 0],
      ['AT', 'ivet_dual', 1, 0],
      ['AT', 'ivet_school', 1, 1],
      ['DE', 'ivet_school', 4, 0],
    ]);
  });
});

describe('every CSV a coordinator downloads', () => {
  it('starts with a UTF-8 byte-order mark and names countries, institution types and languages in words', async () => {
    const campaign = await createCampaignWithContacts(platform, { contacts: 2, countries: ['EL'], types: ['ivet_dual'] });
    const nonrespondents = await coordinator.agent.get(`/admin/campaigns/${campaign.campaignId}/fieldwork/nonrespondents.csv`).expect(200);
    expect(nonrespondents.text.startsWith('\ufeff')).toBe(true);
    const rows: string[][] = parse(nonrespondents.text, { bom: true });
    expect(rows[1]!.slice(3, 5)).toEqual(['EL (Greece)', 'Dual or apprenticeship-based initial VET']);

    const institutions = await coordinator.agent.get('/admin/institutions/export.csv?country=EL').expect(200);
    expect(institutions.text.startsWith('\ufeff')).toBe(true);
    const exported: string[][] = parse(institutions.text, { bom: true });
    expect(exported[1]!.slice(1, 3)).toEqual(['EL (Greece)', 'Dual or apprenticeship-based initial VET']);
    expect(exported[1]![6]).toBe('English');
    // The export, labels and all, imports again without a change.
    const again = await importContacts({ models: platform.models, now: platform.clock.now }, institutions.text, { commit: false, actor: 'test' });
    expect(again.counts).toMatchObject({ create: 0, update: 0, unchanged: 2, reject: 0 });

    const records = await coordinator.agent.get('/admin/privacy/records.csv').expect(200);
    expect(records.text.startsWith('\ufeff')).toBe(true);
  });
});
