import { simpleParser } from 'mailparser';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { drainOutbox, senderFor } from '../helpers/mail.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
let sink: SmtpSink;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await platform.close();
});

/** The new-campaign form as the page fills it, with changes. */
async function campaignForm(changes: Record<string, unknown> = {}) {
  const page = await coordinator.agent.get('/admin/campaigns/new').expect(200);
  const fields: Record<string, unknown> = { _csrf: coordinator.csrf, strands: ['S1'], languages: ['en', 'fr'] };
  for (const match of page.text.matchAll(/<input id="[^"]*" name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[match[1]!] ??= decode(match[2]!);
  for (const match of page.text.matchAll(/<textarea id="[^"]*" name="([^"]+)"[^>]*>([\s\S]*?)<\/textarea>/g)) fields[match[1]!] = decode(match[2]!);
  return { ...fields, name: `Consent wave ${Math.random().toString(36).slice(2, 8)}`, senderName: 'VET working group', replyTo: 'dpo@board.example', ...changes };
}

function decode(html: string) {
  return html.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#x60;/g, '`').replace(/&amp;/g, '&');
}

/** A consent-based campaign's respondent: the campaign is switched to consent as a coordinator would set it. */
async function consentRespondent() {
  const invited = await createInvitedContact(platform, { strands: ['S1'], language: 'en' });
  await platform.models.Campaign.updateOne({ _id: invited.campaignId }, { $set: { lawfulBasis: 'consent', languages: ['en', 'fr'] } });
  return { ...invited, r: respondent(platform, invited.path, invited.invitation.tokenHash) };
}

describe('privacy notice and lawful basis per campaign', () => {
  it('a coordinator sets the lawful basis, the retention and an own notice at creation; the other language gets the default text', async () => {
    const form = await campaignForm({ lawfulBasis: 'consent', retentionMonths: '18', notice_en: 'Controller: Board <b>VET</b>.\nPurpose: the study.' });
    const created = await coordinator.agent.post('/admin/campaigns').type('form').send(form);
    expect(created.status).toBe(303);
    const campaign = await platform.models.Campaign.findOne({ name: form.name }).lean();
    expect(campaign).toMatchObject({ lawfulBasis: 'consent', retentionMonths: 18 });
    expect(campaign!.privacyNotices).toEqual([{ language: 'en', text: 'Controller: Board <b>VET</b>.\nPurpose: the study.' }]);

    const en = await request(platform.app).get(`/privacy/${campaign!._id}?lang=en`).expect(200);
    expect(en.text).toContain('Controller: Board &lt;b&gt;VET&lt;/b&gt;.');
    const fr = await request(platform.app).get(`/privacy/${campaign!._id}?lang=fr`).expect(200);
    expect(fr.text).toContain('Responsable du traitement : VET working group (contact : dpo@board.example)');
    expect(fr.text).toContain('18 mois après la clôture');
    expect(fr.text).toContain('votre consentement');
    // Rectification is explained: answers through the link while open, contact details by the coordinator.
    expect(fr.text).toContain('corriger vos réponses avec votre lien personnel');

    // Editable: the retention changes and the change is audited.
    const edit = await coordinator.agent.post(`/admin/campaigns/${campaign!._id}`).type('form').send({ ...form, retentionMonths: '30' });
    expect(edit.status).toBe(303);
    expect((await platform.models.Campaign.findById(campaign!._id).lean())!.retentionMonths).toBe(30);
    const audit = await platform.models.AuditEntry.findOne({ action: 'campaign.update', target: `campaign:${campaign!._id}` }).lean();
    expect(JSON.parse(audit!.details!).changed).toContain('retentionMonths');
  });

  it('a retention outside 1 to 240 months or an unknown basis is refused and nothing is saved', async () => {
    const form = await campaignForm({ retentionMonths: '0', lawfulBasis: 'because' });
    const response = await coordinator.agent.post('/admin/campaigns').type('form').send(form);
    expect(response.status).toBe(400);
    expect(response.text).toContain('keep personal data at least 1 month');
    expect(response.text).toContain('choose a lawful basis');
    expect(await platform.models.Campaign.countDocuments({ name: form.name })).toBe(0);
  });

  it('the questionnaire shows the notice on its first page and links it; with consent, nothing is stored before the respondent agrees', async () => {
    const { path, invitation, r } = await consentRespondent();
    const page = await r.open().expect(200);
    expect(page.text).toContain('id="privacy-notice"');
    expect(page.text).toContain('Legal basis: your consent');
    expect(page.text).toMatch(/id="privacy-link" href="\/privacy\/[0-9a-f]{24}\?lang(=|&#x3D;)en"/);
    expect(page.text).toContain('id="consent-form"');
    const boot = bootOf(page.text) as ReturnType<typeof bootOf> & { privacy: { consentRequired: boolean; notices: Record<string, { version: string }> } };
    expect(boot.privacy.consentRequired).toBe(true);

    const refused = await r.saveDraft({ data: { P1: 'AT' }, pageNo: 1, baseRevision: 0, language: 'en' }).expect(403);
    expect(refused.body.error).toContain('agree to the privacy notice');
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(403);
    const untouched = await platform.models.Invitation.findById(invitation._id).lean();
    expect(untouched!.draft?.json).toBeUndefined();
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(0);

    // A page showing an older notice is told to reload; a malformed body is a 400.
    await request(platform.app).post(`${path}/consent`).set('X-CSRF-Token', r.csrf).send({ version: '0123456789abcdef', language: 'en' }).expect(409);
    await request(platform.app).post(`${path}/consent`).set('X-CSRF-Token', r.csrf).send({ version: { $gt: '' }, language: 'en' }).expect(400);
    await request(platform.app).post(`${path}/consent`).send({ version: boot.privacy.notices.en!.version, language: 'en' }).expect(403);

    platform.clock.advance(1000);
    const agreedAt = platform.clock.now();
    await request(platform.app).post(`${path}/consent`).set('X-CSRF-Token', r.csrf).send({ version: boot.privacy.notices.en!.version, language: 'en' }).expect(201);
    // A second click keeps the first consent.
    platform.clock.advance(1000);
    await request(platform.app).post(`${path}/consent`).set('X-CSRF-Token', r.csrf).send({ version: boot.privacy.notices.en!.version, language: 'en' }).expect(201);
    const consent = await platform.models.Consent.findById(String(invitation._id)).lean();
    expect(consent).toMatchObject({ version: boot.privacy.notices.en!.version, language: 'en', at: agreedAt });

    await r.saveDraft({ data: { P1: 'AT' }, pageNo: 1, baseRevision: 0, language: 'en' }).expect(200);
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    const revision = await platform.models.ResponseRevision.findById(`${invitation._id}:1`).lean();
    expect(revision!.consent).toEqual({ version: boot.privacy.notices.en!.version, language: 'en', at: agreedAt });
    const response = await platform.models.Response.findById(invitation._id).lean();
    expect(response!.consent).toEqual({ version: boot.privacy.notices.en!.version, language: 'en', at: agreedAt });

    const again = await r.open('?edit=1').expect(200);
    expect(again.text).not.toContain('id="consent-form"');
    expect(again.text).toContain('You agreed to the privacy notice on');
  });

  it('without consent as the basis, answers are stored as before, with no consent record, and the notice is still shown', async () => {
    const { invitation, r } = await (async () => {
      const invited = await createInvitedContact(platform, { strands: ['S1'] });
      return { ...invited, r: respondent(platform, invited.path, invited.invitation.tokenHash) };
    })();
    const page = await r.open().expect(200);
    expect(page.text).toContain('Legal basis: our legitimate interest');
    expect(page.text).not.toContain('id="consent-form"');
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'en' }).expect(201);
    expect((await platform.models.Response.findById(invitation._id).lean())!.consent).toBeUndefined();
  });

  it('a campaign that names no sender or reply-to address has its default notice wholly in each language', async () => {
    const { campaignId } = await createInvitedContact(platform, { strands: ['S1'] });
    await platform.models.Campaign.updateOne({ _id: campaignId }, { $set: { languages: ['en', 'fr', 'de'] }, $unset: { senderName: 1, replyTo: 1 } });
    const notice = async (lang: string) => decode((await request(platform.app).get(`/privacy/${campaignId}?lang=${lang}`).expect(200)).text);
    const [en, fr, de] = [await notice('en'), await notice('fr'), await notice('de')];
    expect(en).toContain('Controller: The European working group on VET staff mobility (contact: the address that sent you the invitation).');
    expect(fr).toContain('Responsable du traitement : Le groupe de travail européen sur la mobilité du personnel de l’EFP (contact : l’adresse qui vous a envoyé l’invitation).');
    expect(fr).toContain('en écrivant à l’adresse qui vous a envoyé l’invitation.');
    expect(de).toContain('Verantwortlicher: Die europäische Arbeitsgruppe zur Mobilität des Berufsbildungspersonals (Kontakt: die Adresse, von der Sie die Einladung erhalten haben).');
    expect(de).toContain('per Nachricht an die Adresse, von der Sie die Einladung erhalten haben.');
    for (const page of [fr, de]) expect(page).not.toMatch(/the address that sent you|working group on VET/);
  });

  it('every invitation links to the campaign notice in its language', async () => {
    const { campaignId, contact } = await createInvitedContact(platform, { strands: ['S1'], language: 'de' });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const message = sink.messages.find((m) => m.to.includes(contact.email));
    const raw = message!.raw.replace(/=\r?\n/g, '');
    expect(raw).toContain(`http://survey.test/privacy/${campaignId}?lang=3Dde`.replace('?lang=3Dde', '?lang='));
    expect(raw).toMatch(/Wie wir mit Ihren personenbezogenen Daten umgehen/);
  });

  it('the plain text names the notice in the language\'s typography (French: a space before the colon)', async () => {
    const { campaignId, contact } = await createInvitedContact(platform, { strands: ['S1'], language: 'fr' });
    await enqueueInvitations({ models: platform.models, now: platform.clock.now }, campaignId, 'test');
    const { deps, policy, close } = senderFor(platform, sink.url);
    await drainOutbox(() => sendDueMessages(deps, policy));
    close();
    const parsed = await simpleParser(sink.messages.find((m) => m.to.includes(contact.email))!.raw);
    expect(parsed.text).toContain(`Comment nous traitons vos données personnelles : http://survey.test/privacy/${campaignId}?lang=fr`);
  });
});
