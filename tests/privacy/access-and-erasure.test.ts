import { simpleParser } from 'mailparser';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { unsubscribe } from '../../server/mail/unsubscribe.service.ts';
import { unsubscribeLink } from '../../server/mail/unsubscribe-token.ts';
import { suppressionHash } from '../../server/privacy/subject.store.ts';
import { erasePerson } from '../../server/privacy/privacy.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { drainOutbox, senderFor } from '../helpers/mail.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { searchEveryCollection } from './subject-data.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { quoteKey } from '../../server/evidence/evidence-quotes.service.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 1, minCellRespondents: 1 });
  coordinator = await signIn(platform, 'coordinator');
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

const textQuestions = new Set(buildCatalogue(loadSurveyLibrary()).questions.filter((q) => q.kind === 'text').map((q) => q.name));
const privacyDeps = () => ({ models: platform.models, tokenKey: platform.tokenKey, tagKey: platform.tagKey, now: platform.clock.now, textQuestions });

/**
 * One person in every place the platform keeps personal data: a contact in a
 * consent-based campaign who consented, saved drafts, submitted twice (with
 * free text), received an invitation through SMTP, had the link replaced,
 * had their name corrected by the coordinator, was named in an uploaded
 * contacts file, and unsubscribed; plus a second campaign's draft.
 */
async function seedPerson() {
  const first = await createInvitedContact(platform, { strands: ['S1'] });
  const { contact, campaignId, invitation } = first;
  await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { lawfulBasis: 'consent' } });
  const r = respondent(platform, first.path, invitation.tokenHash);
  const boot = bootOf((await r.open().expect(200)).text) as unknown as { privacy: { notices: Record<string, { version: string }> } };
  await request(platform.app).post(`${first.path}/consent`).set('X-CSRF-Token', r.csrf).send({ version: boot.privacy.notices.en!.version, language: 'en' }).expect(201);
  await r.saveDraft({ data: { P1: 'AT' }, pageNo: 1, baseRevision: 0, language: 'en' }).expect(200);
  await r.submit({ data: completeAnswers({ S1_6: `I am ${contact.name}, write to ${contact.email}` }), baseRevision: 0, language: 'en' }).expect(201);
  await r.submit({ data: completeAnswers({ S1_5: 2, S1_6: `Still ${contact.name}` }), baseRevision: 1, language: 'en' }).expect(201);
  await coordinator.agent
    .post('/evidence/quotes/review')
    .type('form')
    .send({ _csrf: coordinator.csrf, campaign: String(campaignId), key: quoteKey(invitation._id, 'S1_6', `Still ${contact.name}`), state: 'hidden' })
    .expect(303);

  await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
  const { deps, policy, close } = senderFor(platform, sink.url);
  await drainOutbox(() => sendDueMessages(deps, policy));
  close();
  const received = sink.messages.find((m) => m.to.includes(contact.email))!;

  // A second campaign: a draft only, on the same contact.
  const second = await platform.models.Campaign.create({ name: 'Second wave', strands: ['S1'], opensAt: new Date(platform.clock.current.getTime() - 86_400_000), closesAt: new Date(platform.clock.current.getTime() + 30 * 86_400_000) });
  const { createInvitations, personalLink } = await import('../../server/invitations/invitation.service.ts');
  await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, second._id, [contact]);
  const secondInvitation = (await platform.models.Invitation.findOne({ campaign: second._id, contact: contact._id }))!;
  await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, secondInvitation), secondInvitation.tokenHash)
    .saveDraft({ data: { P1: 'DE' }, pageNo: 0, baseRevision: 0, language: 'en' })
    .expect(200);

  await coordinator.agent.post(`/admin/invitations/${invitation._id}/regenerate`).type('form').send({ _csrf: coordinator.csrf, replacing: '0' });
  const newName = `${contact.name} Corrected`;
  await coordinator.agent.post(`/admin/contacts/${contact._id}`).type('form').send({ _csrf: coordinator.csrf, name: newName, email: contact.email, language: 'en' });
  await coordinator.agent
    .post('/admin/institutions/import')
    .type('form')
    .send({ _csrf: coordinator.csrf, text: `institution_name,country,institution_type,erasmus_id,contact_name,email,language\nOther school,DE,ivet_school,,${newName},${contact.email},en\nThird school,AT,ivet_school,,Somebody Else,else@school.example,en`, fileName: 'contacts.csv' })
    .expect(200);
  await unsubscribe({ models: platform.models, tokenKey: platform.tokenKey, now: platform.clock.now }, unsubscribeLink({ tokenKey: platform.tokenKey, publicUrl: '' }, String(contact._id)).split('/u/')[1]);

  const outbox = await platform.models.Outbox.find({ contact: contact._id }).lean();
  const needles = [contact.email, contact.name, newName, String(contact._id), String(invitation._id), String(secondInvitation._id), ...outbox.map((m) => String(m._id))];
  return { email: contact.email, needles, contact, invitation, secondInvitation, campaignId, received, firstPath: first.path };
}

describe('access request (Art. 15)', () => {
  it('the export holds every stored document that names the person, found by an independent search of every collection', async () => {
    const person = await seedPerson();
    const hits = await searchEveryCollection(platform, person.needles);
    const collections = new Set(hits.map((h) => h.collection));
    for (const expected of ['contacts', 'invitations', 'outbox', 'outbox_claims', 'outbox_outcomes', 'responses', 'response_revisions', 'quote_texts', 'consents', 'suppressions', 'claims', 'quote_reviews', 'audit_entries', 'import_previews']) {
      expect(collections, `the seed reaches ${expected}`).toContain(expected);
    }

    const page = await coordinator.agent.post('/admin/privacy/subject').type('form').send({ _csrf: coordinator.csrf, email: person.email.toUpperCase() }).expect(200);
    expect(page.text).toContain(`Personal data of <span class="long-text">${person.email}</span>`);

    const json = await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: person.email, format: 'json' }).expect(200);
    expect(json.headers['content-disposition']).toContain('attachment');
    const exported = json.text;
    for (const hit of hits) expect(exported, `${hit.collection} ${hit.id} (found by "${hit.needle}") is in the export`).toContain(hit.id);
    const report = JSON.parse(exported);
    expect(report.data.invitations.find((i: { _id: string }) => i._id === String(person.secondInvitation._id)).draft.json).toContain('DE');
    expect(report.data.revisions).toHaveLength(2);
    expect(report.data.consents[0].version).toMatch(/^[0-9a-f]{16}$/);
    expect(report.data.outboxOutcomes[0].messageId).toMatch(/^</);

    // The invitation as the mail server received it: headers, text and HTML, personal link included.
    const asReceived = await simpleParser(person.received.raw);
    expect(report.data.sentEmails).toHaveLength(1);
    const [sent] = report.data.sentEmails;
    expect(sent.headers).toMatchObject({ To: person.email, Subject: asReceived.subject, 'Message-ID': asReceived.messageId, 'List-Unsubscribe': expect.stringContaining('/u/') });
    expect(sent.text.trim()).toBe(asReceived.text!.trim());
    expect(sent.html.trim()).toBe(String(asReceived.html).trim());
    expect(sent.text).toContain(person.firstPath);
    expect(sent.text).toContain(person.contact.name);

    const html = await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: person.email, format: 'html' }).expect(200);
    for (const hit of hits) expect(html.text).toContain(hit.id);
    expect(html.text).toContain('Consent records (1)');
    expect(html.text).toContain('Emails as sent (headers, text and HTML bodies) (1)');
    expect(html.text).toContain('Emails as the person received them (1)');
    expect(html.text).toContain(`<dt>Subject</dt><dd>${asReceived.subject}</dd>`);

    // The CSV: one line per stored value, every record of the JSON export in it.
    const csv = await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: person.email, format: 'csv' }).expect(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/attachment; filename="personal-data-.*\.csv"/);
    expect(csv.text.split('\r\n')[0]).toBe('\ufeffsection,record,field,value');
    for (const hit of hits) expect(csv.text, `${hit.collection} ${hit.id} is in the CSV`).toContain(hit.id);
    expect(csv.text).toContain(`Consent records,${person.invitation._id},version,${report.data.consents[0].version}`);
    expect(csv.text).toContain(`"Emails as sent (headers, text and HTML bodies)",${sent._id},headers.Subject,`);
    expect(csv.text).toContain(person.firstPath);
    const semicolon = await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: person.email, format: 'csv-semicolon' }).expect(200);
    expect(semicolon.text.split('\r\n')[0]).toBe('\ufeffsection;record;field;value');

    // Audited without the address: the look-up and both exports.
    const audit = await platform.models.AuditEntry.find({ action: { $in: ['privacy.lookup', 'privacy.access'] } }).lean();
    expect(audit.map((a) => a.action).sort()).toEqual(['privacy.access', 'privacy.access', 'privacy.access', 'privacy.access', 'privacy.lookup']);
    expect(new Set(audit.map((a) => a.target)).size).toBe(1);
    expect(JSON.stringify(audit)).not.toContain(person.email);
  });

  it('the forms need the CSRF token and a valid address', async () => {
    await coordinator.agent.post('/admin/privacy/access').type('form').send({ email: 'a@b.example', format: 'json' }).expect(403);
    await coordinator.agent.post('/admin/privacy/access').type('form').send({ _csrf: coordinator.csrf, email: { $ne: '' }, format: 'json' }).expect(400);
    const reviewer = await signIn(platform, 'reviewer');
    await reviewer.agent.post('/admin/privacy/access').type('form').send({ _csrf: reviewer.csrf, email: 'a@b.example', format: 'json' }).expect(403);
  });
});

describe('erasure (Art. 17)', () => {
  it('forgetting a person is previewed, then leaves nothing of them in any collection but a hashed suppression entry, and running it again changes nothing', async () => {
    const person = await seedPerson();
    const preview = await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: person.email, mode: 'forget' }).expect(200);
    expect(preview.text).toContain('Erase now');
    expect(await platform.models.AuditEntry.countDocuments({ action: 'privacy.erase-preview' })).toBe(1);
    expect(await platform.models.Contact.countDocuments({ email: person.email })).toBe(1);

    const done = await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: person.email, mode: 'forget', confirm: 'yes' }).expect(200);
    expect(done.text).toContain('Personal data erased');
    expect(await searchEveryCollection(platform, person.needles)).toEqual([]);
    expect(await platform.models.Suppression.findOne({ email: suppressionHash(platform.tokenKey, person.email) }).lean()).toMatchObject({ reason: 'erased' });

    // The closed answers stay, anonymous: no free text, no invitation.
    const anonymous = await platform.models.Response.find({ campaign: person.campaignId }).lean();
    expect(anonymous).toHaveLength(1);
    expect(anonymous[0]!.data).not.toHaveProperty('S1_6');
    expect(anonymous[0]!.data).toMatchObject({ S1_5: 2 });
    expect(String(anonymous[0]!.invitation)).not.toBe(String(person.invitation._id));

    const again = await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: person.email, mode: 'forget', confirm: 'yes' }).expect(200);
    expect(again.text).toContain('Nothing was held any more');
    expect(await platform.models.Response.countDocuments({ campaign: person.campaignId })).toBe(1);
    const audit = await platform.models.AuditEntry.find({ action: 'privacy.erase' }).lean();
    expect(audit.map((a) => JSON.parse(a.details!).changed)).toEqual([true, false]);
  });

  it('an erased address imported again is never mailed: the sender recognises the hash', async () => {
    const person = await seedPerson();
    await erasePerson(privacyDeps(), { email: person.email, mode: 'delete', actor: 'test' });
    const again = await createInvitedContact(platform, { strands: ['S1'] });
    await platform.models.Contact.updateOne({ _id: again.contact._id }, { $set: { email: person.email } });
    await platform.models.Outbox.deleteMany({ campaign: again.campaignId });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, again.campaignId, 'test');
    const before = sink.messages.length;
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    expect(sink.messages.slice(before).filter((m) => m.to.includes(person.email))).toEqual([]);
    const outcome = await platform.models.OutboxOutcome.findOne({ campaign: again.campaignId }).lean();
    expect(outcome).toMatchObject({ state: 'skipped', skipReason: 'suppressed' });
  });

  it('a crash half-way through an erasure is completed by running it again, with one anonymous record', async () => {
    const person = await seedPerson();
    await expect(
      erasePerson(privacyDeps(), {
        email: person.email,
        mode: 'forget',
        actor: 'test',
        onStep: (step) => {
          if (step === 'invitations') throw new Error('crash');
        },
      }),
    ).rejects.toThrow('crash');
    // Half done: the answers are anonymous already, the contact is still there.
    expect(await platform.models.Contact.countDocuments({ _id: person.contact._id })).toBe(1);
    expect(await platform.models.ErasurePlan.countDocuments({})).toBe(1);

    const result = await erasePerson(privacyDeps(), { email: person.email, mode: 'forget', actor: 'test' });
    expect(result.changed).toBe(true);
    expect(await searchEveryCollection(platform, person.needles)).toEqual([]);
    expect(await platform.models.Response.countDocuments({ campaign: person.campaignId })).toBe(1);
    expect(await platform.models.ErasurePlan.countDocuments({})).toBe(0);
  });

  it('an erasure that stopped half-way shows in the coordinator\'s preview, and erasing from the page finishes it with one anonymous record', async () => {
    const person = await seedPerson();
    const erase = (fields: Record<string, string>) => coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: person.email, mode: 'forget', ...fields });
    // The process dies after the answers and consents, before the email records.
    await expect(
      erasePerson(privacyDeps(), {
        email: person.email,
        mode: 'forget',
        actor: 'test',
        onStep: (step) => {
          if (step === 'consents') throw new Error('crash');
        },
      }),
    ).rejects.toThrow('crash');
    const anonymousId = String((await platform.models.Response.findOne({ campaign: person.campaignId }).lean())!._id);
    // The emails as sent are kept in their outcomes "sent".
    expect(await platform.models.OutboxOutcome.countDocuments({ sentEmail: { $exists: true } })).toBeGreaterThan(0);

    const preview = await erase({}).expect(200);
    expect(preview.text).toContain('did not finish');
    const remaining = rowsOf(preview.text);
    expect(remaining['Current response']).toBe('0');
    expect(remaining['Emails as sent (headers, text and HTML bodies)']).toBe('1');
    expect(remaining['Contact records']).toBe('1');
    // Previewing changes nothing.
    expect(await platform.models.Contact.countDocuments({ _id: person.contact._id })).toBe(1);

    const done = await erase({ confirm: 'yes' }).expect(200);
    expect(done.text).toContain('Personal data erased');
    expect(await searchEveryCollection(platform, person.needles)).toEqual([]);
    const responses = await platform.models.Response.find({ campaign: person.campaignId }).lean();
    expect(responses.map((r) => String(r._id))).toEqual([anonymousId]);
    expect(await platform.models.ErasurePlan.countDocuments({})).toBe(0);

    expect((await erase({}).expect(200)).text).not.toContain('did not finish');
    expect((await erase({ confirm: 'yes' }).expect(200)).text).toContain('Nothing was held any more');
    expect(await platform.models.Response.countDocuments({ campaign: person.campaignId })).toBe(1);
  });
});

/** The "where → records" rows of a preview or result table. */
function rowsOf(html: string): Record<string, string> {
  return Object.fromEntries([...html.matchAll(/<tr><td>([^<]*)<\/td><td>(\d+)<\/td><\/tr>/g)].map((m) => [m[1]!.replace(/&#x27;/g, "'"), m[2]!]));
}
