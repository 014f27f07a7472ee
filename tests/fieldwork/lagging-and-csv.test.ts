import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAG_MIN_INVITED } from '../../server/fieldwork/fieldwork.service.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
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
