import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { signIn } from '../helpers/accounts.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

const institutionForm = {
  institution_name: 'Escola Profissional do Porto',
  country: 'PT',
  institution_type: 'ivet_school',
  erasmus_id: '',
  contact_name: 'Inês Moura',
  email: 'Ines@EPP.example',
  language: 'en',
};

describe('adding one institution and contact on a page', () => {
  it('checks the row as the CSV import does, writes it like the import, and audits it', async () => {
    const { agent, csrf, user } = await signIn(platform, 'coordinator');
    await agent.get('/admin/institutions/new').expect(200);

    const greek = await agent.post('/admin/institutions/new').type('form').send({ ...institutionForm, country: 'GR', email: 'not-an-email', _csrf: csrf });
    expect(greek.status).toBe(400);
    // The import's own messages.
    expect(greek.text).toContain('country GR: the survey codes Greece as EL');
    expect(greek.text).toContain('&quot;not-an-email&quot; is not a valid email address');
    expect(greek.text).toContain('value="Escola Profissional do Porto"');
    expect(await platform.models.Institution.countDocuments({ name: 'Escola Profissional do Porto' })).toBe(0);

    expect((await agent.post('/admin/institutions/new').type('form').send(institutionForm)).status).toBe(403);

    const added = await agent.post('/admin/institutions/new').type('form').send({ ...institutionForm, _csrf: csrf });
    expect(added.status).toBe(303);
    const institution = await platform.models.Institution.findOne({ name: 'Escola Profissional do Porto' }).lean();
    expect(institution).toMatchObject({ country: 'PT', type: 'ivet_school', active: true, key: 'name:PT:escola profissional do porto' });
    expect(added.headers.location).toBe(`/admin/institutions/${institution!._id}?added=institution`);
    const contact = await platform.models.Contact.findOne({ institution: institution!._id }).lean();
    expect(contact).toMatchObject({ name: 'Inês Moura', email: 'ines@epp.example', language: 'en', active: true });
    expect(await platform.models.AuditEntry.exists({ action: 'institution.add', actor: user.email, target: 'ines@epp.example' })).not.toBeNull();
    expect((await agent.get(added.headers.location!)).text).toContain('The institution and its contact were added.');

    // The same again changes nothing and says so.
    const again = await agent.post('/admin/institutions/new').type('form').send({ ...institutionForm, _csrf: csrf });
    expect(again.status).toBe(400);
    expect(again.text).toContain('ines@epp.example is already a contact of this institution');
    expect(await platform.models.Institution.countDocuments({ name: 'Escola Profissional do Porto' })).toBe(1);
  });

  it('adds a contact to an institution on its page, with the same checks', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const { institution } = await createInvitedContact(platform);
    const bad = await agent.post(`/admin/institutions/${institution._id}/contacts`).type('form').send({ contact_name: '', email: 'x@y.example', language: 'it', _csrf: csrf });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('the contact name is empty');
    // An empty field is called empty, not an unknown value "".
    const empty = await agent.post('/admin/institutions/new').type('form').send({ institution_name: 'Empty fields school', country: '', institution_type: '', contact_name: 'Eva', email: ' ', _csrf: csrf });
    expect(empty.status).toBe(400);
    for (const message of ['the country is empty', 'the institution type is empty', 'the email address is empty']) expect(empty.text).toContain(message);
    expect(empty.text).not.toContain('&quot;&quot;');
    expect(bad.text).toContain('language &quot;it&quot; is not one of en, fr, de');
    const good = await agent.post(`/admin/institutions/${institution._id}/contacts`).type('form').send({ contact_name: 'Jonas Keller', email: 'jonas@school.example', language: 'de', _csrf: csrf });
    expect(good.status).toBe(303);
    expect(await platform.models.Contact.findOne({ institution: institution._id, email: 'jonas@school.example' }).lean()).toMatchObject({ name: 'Jonas Keller', language: 'de' });
    expect(await platform.models.AuditEntry.exists({ action: 'contact.add', target: 'jonas@school.example' })).not.toBeNull();
    expect(await platform.models.Institution.countDocuments({ _id: institution._id })).toBe(1);
  });
});

describe('deactivating several at once', () => {
  it('deactivates the ticked institutions and revokes their open links, each audited', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const a = await createInvitedContact(platform);
    const b = await createInvitedContact(platform);
    const untouched = await createInvitedContact(platform);
    const response = await agent.post('/admin/institutions/deactivate').type('form').send(`ids=${a.institution._id}&ids=${b.institution._id}&_csrf=${encodeURIComponent(csrf)}`);
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/admin/institutions?deactivated=2&revoked=2');
    for (const { institution, path } of [a, b]) {
      expect((await platform.models.Institution.findById(institution._id).lean())?.active).toBe(false);
      expect((await request(platform.app).get(path)).status).toBe(410);
    }
    expect((await platform.models.Institution.findById(untouched.institution._id).lean())?.active).toBe(true);
    expect((await request(platform.app).get(untouched.path)).status).toBe(200);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'institution.deactivate', target: { $in: [`institution:${a.institution._id}`, `institution:${b.institution._id}`] } })).toBe(2);
    expect((await agent.get(response.headers.location!)).text).toContain('2 institutions deactivated; 2 personal links revoked.');
  });

  it('deactivates the ticked contacts of an institution; without the CSRF token nothing changes', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const first = await createInvitedContact(platform);
    const second = await platform.models.Contact.create({ institution: first.institution._id, name: 'Second Person', email: 'second@school.example' });
    const ids = `ids=${first.contact._id}&ids=${second._id}&back=${encodeURIComponent(`/admin/institutions/${first.institution._id}`)}`;
    expect((await agent.post('/admin/contacts/deactivate').type('form').send(ids)).status).toBe(403);
    expect((await platform.models.Contact.findById(first.contact._id).lean())?.active).toBe(true);
    const response = await agent.post('/admin/contacts/deactivate').type('form').send(`${ids}&_csrf=${encodeURIComponent(csrf)}`);
    expect(response.headers.location).toBe(`/admin/institutions/${first.institution._id}?deactivated=2&revoked=1`);
    expect(await platform.models.Contact.countDocuments({ institution: first.institution._id, active: false })).toBe(2);
    expect((await request(platform.app).get(first.path)).status).toBe(410);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'contact.deactivate', target: { $in: [`contact:${first.contact._id}`, `contact:${second._id}`] } })).toBe(2);
  });
});

describe('the institution list', () => {
  it('shows the totals of institutions and contacts, and how many are active', async () => {
    const own = await startTestPlatform();
    try {
      const { agent, csrf } = await signIn(own, 'coordinator');
      const kept = await createInvitedContact(own);
      const dropped = await createInvitedContact(own);
      await own.models.Contact.create({ institution: kept.institution._id, name: 'Unsubscribed One', email: 'gone@school.example', unsubscribedAt: new Date() });
      await agent.post(`/admin/institutions/${dropped.institution._id}/active`).type('form').send({ active: 'false', _csrf: csrf }).expect(303);
      const page = await agent.get('/admin/institutions').expect(200);
      expect(page.text).toContain('<strong>2</strong> institutions (1 active)');
      expect(page.text).toContain('<strong>3</strong> contacts (1 active: invited by a new campaign)');
    } finally {
      await own.close();
    }
  });
});
