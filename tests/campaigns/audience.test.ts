import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudience } from '../../server/campaigns/audience.service.ts';
import { findDemoData, removeDemoData } from '../../server/campaigns/demo-data.service.ts';
import { createDemoCampaign } from '../../server/campaigns/demo.service.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { countByState } from '../../server/mail/outbox.service.ts';
import { csrfOf, signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { drainOutbox, PUBLIC_URL, senderFor } from '../helpers/mail.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator', { name: 'Cora Ordinator' });
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

let run = 0;
/** An institution with its contacts; each contact is { email, ...overrides }. */
async function institution(country: string, type: string, contacts: Array<Record<string, unknown> & { email: string }>, extra: Record<string, unknown> = {}) {
  run += 1;
  const name = `Audience school ${run}`;
  const created = await platform.models.Institution.create({ name, country, type, key: institutionKey({ name, country }), ...extra });
  await platform.models.Contact.insertMany(contacts.map((c) => ({ institution: created._id, name: `Person ${c.email}`, language: "en", ...c })) as never[]);
  // As every writer of the contact list does: the pages keep what they read until this stamp moves.
  await noteContactsChange(platform.models);
  return created;
}

/** Creates a campaign through the form, with the audience fields given. */
async function createCampaign(name: string, audience: Record<string, unknown>, languages = ['en', 'fr']) {
  const page = await coordinator.agent.get('/admin/campaigns/new').expect(200);
  const fields: Record<string, unknown> = { _csrf: coordinator.csrf, strands: ['S1'], languages, ...audience };
  for (const match of page.text.matchAll(/<input id="[^"]*" name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[match[1]!] ??= match[2]!.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&amp;/g, '&');
  for (const match of page.text.matchAll(/<textarea id="[^"]*" name="([^"]+)"[^>]*>([\s\S]*?)<\/textarea>/g)) {
    fields[match[1]!] ??= match[2]!.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }
  const response = await coordinator.agent.post('/admin/campaigns').type('form').send({ ...fields, name });
  expect(response.status, response.text.slice(0, 500)).toBe(303);
  const campaign = (await platform.models.Campaign.findOne({ name }).lean())!;
  return campaign;
}

/** The number on the campaign page's "Create N personal links" button, and the count it posts. */
async function shownCount(campaignId: unknown) {
  const page = await coordinator.agent.get(`/admin/campaigns/${campaignId}`).expect(200);
  const button = /<button type="submit">Create (\d+) personal links?<\/button>/.exec(page.text);
  const expected = /name="expected" value="(\d+)"/.exec(page.text);
  return { page: page.text, button: button ? Number(button[1]) : 0, expected: expected?.[1] };
}

describe('who a campaign invites', () => {
  it('a campaign for one country invites only its active contacts, never demo contacts, and the count shown equals the links made', async () => {
    await institution('AT', 'ivet_school', [
      { email: 'anna@at-one.example' },
      { email: 'bert@at-one.example' },
      { email: 'gone@at-one.example', active: false },
      { email: 'unsub@at-one.example', unsubscribedAt: new Date() },
    ]);
    await institution('AT', 'ivet_dual', [{ email: 'clara@at-two.example', language: 'de' }]);
    await institution('AT', 'ivet_school', [{ email: 'closed@at-closed.example' }], { active: false });
    await institution('DE', 'ivet_school', [{ email: 'dora@de.example' }]);
    // Demo data in the same country: a demo institution, a demo contact of a real one, and seed:demo's old unflagged address.
    await institution('AT', 'ivet_school', [{ email: 'demo1@example.org' }], { demo: true });
    await institution('AT', 'ivet_school', [{ email: 'demo-person@at.example', demo: true }, { email: 'demo-7-1@demo.invalid' }]);

    const campaign = await createCampaign('Austria wave', { audienceCountries: 'AT' });
    expect(campaign.audience?.countries).toEqual(['AT']);

    const shown = await shownCount(campaign._id);
    expect(shown.page).toContain('active contacts in AT (Austria)');
    expect(shown.page).toContain('3 demo contacts match too and are left out');
    expect(shown.button).toBe(3);
    expect(shown.expected).toBe('3');

    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/invite`).type('form').send({ _csrf: coordinator.csrf, expected: shown.expected }).expect(303);
    const invitations = await platform.models.Invitation.find({ campaign: campaign._id }).lean();
    expect(invitations).toHaveLength(shown.button);
    const invited = await platform.models.Contact.find({ _id: { $in: invitations.map((i) => i.contact) } }).lean();
    expect(invited.map((c) => c.email).sort()).toEqual(['anna@at-one.example', 'bert@at-one.example', 'clara@at-two.example']);
    const audit = await platform.models.AuditEntry.findOne({ action: 'campaign.invite', target: `campaign:${campaign._id}` }).lean();
    expect(JSON.parse(audit!.details!)).toEqual({ created: 3, total: 3, audience: 'active contacts in AT (Austria)' });

    // Nothing left to create; a stale count from an older page creates nothing and says why.
    expect((await shownCount(campaign._id)).page).toContain('No personal link to create');
    await institution('AT', 'ivet_school', [{ email: 'late@at-three.example' }]);
    const stale = await coordinator.agent.post(`/admin/campaigns/${campaign._id}/invite`).type('form').send({ _csrf: coordinator.csrf, expected: '5' });
    expect(stale.status).toBe(409);
    expect(await platform.models.Invitation.countDocuments({ campaign: campaign._id })).toBe(3);
  });

  it('an institution type, a tag or a pasted CSV of addresses narrows the audience', async () => {
    await institution('FI', 'company_centre', [{ email: 'tagged@fi.example', tags: ['pilot'] }, { email: 'untagged@fi.example' }]);
    await institution('FI', 'ivet_school', [{ email: 'listed@fi-school.example', tags: ['pilot'] }]);

    const byType = await createCampaign('Company centres', { audienceTypes: 'company_centre', audienceCountries: 'FI' });
    expect((await shownCount(byType._id)).button).toBe(2);
    const byTag = await createCampaign('Pilot list', { audienceTags: 'Pilot' });
    expect((await shownCount(byTag._id)).button).toBe(2);
    const csv = 'name;email\nListed person;listed@fi-school.example\nNobody;nobody@nowhere.example\n';
    const byList = await createCampaign('From a list', { audienceEmails: csv });
    expect(byList.audience?.emails).toEqual(['listed@fi-school.example', 'nobody@nowhere.example']);
    const shown = await shownCount(byList._id);
    expect(shown.button).toBe(1);
    expect(shown.page).toContain('<strong>1</strong> contact matches:');
    expect(shown.page).toContain('<button type="submit">Create 1 personal link</button>');
    expect(shown.page).toContain('1 address on the list matches no active contact: nobody@nowhere.example');
  });

  it('tags come from the import\'s tags column; importing the same file again changes nothing; a campaign by tag invites those contacts', async () => {
    const importCsv = async (csv: string) => {
      const preview = await coordinator.agent.post('/admin/institutions/import').type('form').send({ _csrf: coordinator.csrf, text: csv }).expect(200);
      const previewId = /name="previewId" value="([^"]+)"/.exec(preview.text)?.[1];
      if (previewId) await coordinator.agent.post('/admin/institutions/import/commit').type('form').send({ _csrf: coordinator.csrf, previewId }).expect(200);
      return preview.text;
    };
    const csv = [
      'institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags',
      'Tagged college,NL,ivet_school,,Noor,noor@tagged.example,en,north|Pilot',
      'Tagged college,NL,ivet_school,,Sem,sem@tagged.example,en,',
    ].join('\n');
    await importCsv(csv);
    expect((await platform.models.Contact.findOne({ email: 'noor@tagged.example' }).lean())?.tags).toEqual(['north', 'pilot']);
    expect((await platform.models.Contact.findOne({ email: 'sem@tagged.example' }).lean())?.tags).toEqual([]);
    const before = await platform.models.Contact.find({ email: /@tagged\.example$/ }).sort({ email: 1 }).lean();
    await importCsv(csv);
    expect(await platform.models.Contact.find({ email: /@tagged\.example$/ }).sort({ email: 1 }).lean()).toEqual(before);
    const campaign = await createCampaign('North list', { audienceTags: 'north' });
    expect((await shownCount(campaign._id)).button).toBe(1);
  });

  it('a test send reaches the SMTP server once per language, marked as a test, and creates no invitation', async () => {
    const campaign = await createCampaign('Test-send wave', { audienceCountries: 'DE' }, ['en', 'fr', 'de']);
    const preview = await coordinator.agent.get(`/admin/campaigns/${campaign._id}/preview`).expect(200);
    expect(preview.text).toContain(coordinator.user.email);
    const testNo = /name="testNo" value="(\d+)"/.exec(preview.text)![1]!;
    const form = { _csrf: csrfOf(preview.text), testNo, returnTo: 'preview' };
    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/test-send`).type('form').send(form).expect(303);
    // A double click names the same test: it sends nothing more.
    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/test-send`).type('form').send(form).expect(303);

    const sender = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(sender.deps, sender.policy));
    sender.close();
    const mine = sink.messages.filter((m) => m.to.includes(coordinator.user.email));
    expect(mine).toHaveLength(3);
    const parsed = await Promise.all(mine.map((m) => simpleParser(m.raw)));
    const subjects = parsed.map((m) => m.subject ?? '');
    expect(subjects.every((s) => s.startsWith('[TEST] '))).toBe(true);
    // One per language: the default subjects differ by language.
    expect(new Set(subjects).size).toBe(3);
    expect(parsed.every((m) => String(m.headers.get('x-survey-test')).startsWith('yes'))).toBe(true);
    expect(parsed.every((m) => m.text?.includes('Cora Ordinator') && m.text.includes(`${PUBLIC_URL}/s/EXAMPLE-PERSONAL-LINK`))).toBe(true);

    expect(await platform.models.Invitation.countDocuments({ campaign: campaign._id })).toBe(0);
    expect(await platform.models.Outbox.countDocuments({ campaign: campaign._id, kind: 'invitation' })).toBe(0);
    expect((await countByState(platform, { campaign: campaign._id })).total).toBe(0);
    const sending = await coordinator.agent.get(`/admin/campaigns/${campaign._id}/sending`).expect(200);
    expect(sending.text).toMatch(/data-state="total">0</);
    const after = await coordinator.agent.get(`/admin/campaigns/${campaign._id}/preview`).expect(200);
    expect((after.text.match(/<td>sent<\/td>/g) ?? []).length).toBe(3);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'mail.test-send', target: `campaign:${campaign._id}` })).toBe(1);
  });

  it('sending asks for a confirmation that says how many and to whom; a stale count queues nothing and the sending page says so', async () => {
    await institution('PT', 'cvet_adult', [{ email: 'rui@pt.example', language: 'fr' }, { email: 'ines@pt.example' }]);
    const campaign = await createCampaign('Portugal wave', { audienceCountries: 'PT' });
    const shown = await shownCount(campaign._id);
    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/invite`).type('form').send({ _csrf: coordinator.csrf, expected: shown.expected }).expect(303);

    const confirm = await coordinator.agent.get(`/admin/campaigns/${campaign._id}/send`).expect(200);
    expect(confirm.text).toContain('You are about to send <strong>2 invitation emails</strong> to 2 contacts at 1 institution (active contacts in PT (Portugal))');
    expect(confirm.text).toMatch(/<th scope="row">PT \(Portugal\)<\/th><td>2<\/td>/);
    expect(confirm.text).toMatch(/<th scope="row">Français<\/th><td>1<\/td>/);
    expect(confirm.text).toContain('Send 2 invitation emails now');

    const sendNo = (page: string) => /name="sendNo" value="(\d+)"/.exec(page)![1]!;
    const missing = await coordinator.agent.post(`/admin/campaigns/${campaign._id}/send`).type('form').send({ _csrf: coordinator.csrf });
    expect(missing.status).toBe(400);

    // The request records the decision; the background checks the count before queueing anything.
    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/send`).type('form').send({ _csrf: coordinator.csrf, expected: '7', sendNo: sendNo(confirm.text) }).expect(303);
    await platform.invitationQueue.idle();
    expect(await platform.models.Outbox.countDocuments({ campaign: campaign._id })).toBe(0);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaign._id}/sending`).expect(200)).text).toContain('now 2, not 7');

    const again = await coordinator.agent.get(`/admin/campaigns/${campaign._id}/send`).expect(200);
    await coordinator.agent.post(`/admin/campaigns/${campaign._id}/send`).type('form').send({ _csrf: coordinator.csrf, expected: '2', sendNo: sendNo(again.text) }).expect(303);
    await platform.invitationQueue.idle();
    expect(await platform.models.Outbox.countDocuments({ campaign: campaign._id, kind: 'invitation' })).toBe(2);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaign._id}/send`).expect(200)).text).toContain('No invitation to send');
  });
});

describe('removing demo data', () => {
  it('the preview lists exactly the demo records; removing deletes them with their links and answers, keeps real data, and is audited', async () => {
    // The first start's demo campaign needs an empty database: a platform of its own.
    const fresh = await startTestPlatform();
    try {
      const me = await signIn(fresh, 'coordinator');
      const demoLinks = await createDemoCampaign({ models: fresh.models, tokenKey: fresh.tokenKey, publicUrl: PUBLIC_URL, now: fresh.clock.now });
      expect(demoLinks).toHaveLength(5);
      const { models } = fresh;
      const make = async (name: string, demo: boolean, email: string, contactDemo = demo) => {
        const created = await models.Institution.create({ name, country: 'SE', type: 'ivet_school', key: institutionKey({ name, country: 'SE' }), demo });
        const contact = await models.Contact.create({ institution: created._id, name: `Person at ${name}`, email, demo: contactDemo });
        await noteContactsChange(models);
        return { institution: created, contact };
      };
      const seeded = await make('Demo VET centre SE-Lake 1', true, 'demo-1-1@demo.invalid');
      const legacy = await make('Old seed school', false, 'demo-2-1@demo.invalid', false);
      const real = await make('Real school', false, 'real@se.example');
      // A real campaign that invited demo contacts before demo data was excluded.
      const realCampaign = await models.Campaign.create({ name: 'Real wave', strands: ['S1'], opensAt: fresh.clock.now(), closesAt: new Date(fresh.clock.now().getTime() + 30 * 86_400_000) });
      await createInvitations({ models, tokenKey: fresh.tokenKey, publicUrl: PUBLIC_URL }, realCampaign._id, [seeded.contact, legacy.contact, real.contact]);

      const page = await me.agent.get('/admin/demo-data').expect(200);
      const listed = (id: string) => [...(new RegExp(`<ul id="${id}">([\\s\\S]*?)</ul>`).exec(page.text)?.[1] ?? '').matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]!.replace(/&#x27;/g, "'"));
      expect(listed('demo-campaigns')).toEqual(['Demo wave']);
      expect(listed('demo-institutions').sort()).toEqual(
        ['Berufsbildende Schule Musterstadt (DE)', 'Lycée professionnel Jean Jaurès (FR)', 'Omnia Vocational College (FI)', 'Centro de Formação Profissional do Porto (PT)', 'Chambre des métiers du Luxembourg (LU)', 'Demo VET centre SE-Lake 1 (SE)'].sort(),
      );
      expect(listed('demo-contacts').map((l) => /&lt;(.*)&gt;/.exec(l)![1]!).sort()).toEqual(['demo-1-1@demo.invalid', 'demo-2-1@demo.invalid', 'demo1@example.org', 'demo2@example.org', 'demo3@example.org', 'demo4@example.org', 'demo5@example.org']);
      // The demo campaign's 5 links and the real campaign's 2 links to demo contacts.
      expect(page.text).toMatch(/<strong>7<\/strong> personal links/);
      expect(page.text).toMatch(/<strong>1<\/strong> campaign<\/li>/);

      await me.agent.post('/admin/demo-data').type('form').send({ _csrf: csrfOf(page.text), confirm: 'remove' }).expect(303);
      expect(await models.Campaign.find({}).lean().then((c) => c.map((x) => x.name))).toEqual(['Real wave']);
      expect((await models.Institution.find({}).lean()).map((i) => i.name).sort()).toEqual(['Old seed school', 'Real school']);
      expect((await models.Contact.find({}).lean()).map((c) => c.email)).toEqual(['real@se.example']);
      expect((await models.Invitation.find({}).lean()).map((i) => String(i.contact))).toEqual([String(real.contact._id)]);
      const audit = await models.AuditEntry.findOne({ action: 'demo.remove' }).lean();
      expect(audit?.actor).toBe(me.user.email);
      expect(JSON.parse(audit!.details!)).toMatchObject({ campaigns: ['Demo wave'], institutions: 6, contacts: 7, invitations: 7 });
      expect((await me.agent.get('/admin/demo-data').expect(200)).text).toContain('There is no demo data');
    } finally {
      await fresh.close();
    }
  });

  it("a real institution named like a demo one (there are many Lycées Jean Jaurès) is imported as real: its contacts are invited and survive removing the demo data", async () => {
    const fresh = await startTestPlatform();
    try {
      const { models } = fresh;
      await createDemoCampaign({ models, tokenKey: fresh.tokenKey, publicUrl: PUBLIC_URL, now: fresh.clock.now });
      // A demo institution as the first start made it before demo keys were apart.
      await models.Institution.create({ name: 'Omnia Vocational College', country: 'SE', type: 'ivet_school', key: institutionKey({ name: 'Omnia Vocational College', country: 'SE' }), demo: true });
      const file = [
        'institution_name;country;institution_type;contact_name;email',
        'Lycée professionnel Jean Jaurès;FR;ivet_school;Claire Martin;claire.martin@lp-jaures.example',
        'Omnia Vocational College;SE;ivet_school;Sven Berg;sven@omnia.example',
      ].join('\n');
      const plan = await importContacts({ models, now: fresh.clock.now }, file, { commit: true, actor: 'test' });
      expect(plan.institutions).toEqual({ create: 2, update: 0 });
      const real = await models.Institution.find({ demo: false }, { name: 1, country: 1, key: 1 }).lean();
      expect(real.map((i) => [i.name, i.country, i.key]).sort()).toEqual([
        ['Lycée professionnel Jean Jaurès', 'FR', institutionKey({ name: 'Lycée professionnel Jean Jaurès', country: 'FR' })],
        ['Omnia Vocational College', 'SE', institutionKey({ name: 'Omnia Vocational College', country: 'SE' })],
      ]);
      const campaign = await models.Campaign.create({ name: 'Real wave', strands: ['S1'], opensAt: fresh.clock.now(), closesAt: new Date(fresh.clock.now().getTime() + 30 * 86_400_000) });
      const { members } = await readAudience(models, campaign);
      expect(members.map((m) => m.email).sort()).toEqual(['claire.martin@lp-jaures.example', 'sven@omnia.example']);
      const demo = await findDemoData(models);
      expect(demo.contacts.map((c) => c.email)).not.toContain('claire.martin@lp-jaures.example');
      // The list tells the two apart, and counts as invited only the real contacts.
      const me = await signIn(fresh, 'coordinator');
      const list = (await me.agent.get('/admin/institutions').expect(200)).text;
      expect(list).toContain('(2 active: invited by a new campaign; 5 demo, never invited');
      const states = [...list.matchAll(/>Lycée professionnel Jean Jaurès<\/a><\/td><td>FR<\/td><td>[^<]*<\/td><td>[^<]*<\/td>\s*<td>([^<]*)<\/td>/g)].map((m) => m[1]);
      expect(states.sort()).toEqual(['active', 'demo: never invited']);
      await removeDemoData({ models, now: fresh.clock.now }, 'test');
      expect((await models.Contact.find({}, { email: 1 }).lean()).map((c) => c.email).sort()).toEqual(['claire.martin@lp-jaures.example', 'sven@omnia.example']);
      // Importing the same file again changes nothing.
      expect((await importContacts({ models, now: fresh.clock.now }, file, { commit: false, actor: 'test' })).counts).toMatchObject({ create: 0, unchanged: 2 });
    } finally {
      await fresh.close();
    }
  });

  it('reviewers cannot see or remove demo data, and removing needs the CSRF token', async () => {
    const reviewer = await signIn(platform, 'reviewer');
    expect((await reviewer.agent.get('/admin/demo-data')).status).toBe(403);
    expect((await reviewer.agent.post('/admin/demo-data').type('form').send({ _csrf: reviewer.csrf, confirm: 'remove' })).status).toBe(403);
    expect((await coordinator.agent.post('/admin/demo-data').type('form').send({ confirm: 'remove' })).status).toBe(403);
  });
});
