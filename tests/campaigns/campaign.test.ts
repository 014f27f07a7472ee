import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderCampaignEmail } from '../../server/campaigns/campaign-email.service.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => {
  await platform.close();
});

/** The new-campaign form as the page fills it, with changes. */
async function campaignForm(changes: Record<string, unknown> = {}) {
  const page = await coordinator.agent.get('/admin/campaigns/new').expect(200);
  const fields: Record<string, unknown> = { _csrf: coordinator.csrf, strands: ['S1', 'S4'], languages: ['en', 'fr'] };
  for (const match of page.text.matchAll(/<input id="[^"]*" name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[match[1]!] ??= decode(match[2]!);
  for (const match of page.text.matchAll(/<textarea id="[^"]*" name="([^"]+)"[^>]*>([\s\S]*?)<\/textarea>/g)) fields[match[1]!] = decode(match[2]!);
  return { ...fields, name: 'Spring wave 2026', senderName: 'VET working group', replyTo: 'wg@board.example', ...changes };
}

function decode(html: string) {
  return html.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#x60;/g, '`').replace(/&amp;/g, '&');
}

describe('campaigns', () => {
  it('a coordinator creates a campaign with the default texts; the creation is in the audit log', async () => {
    const response = await coordinator.agent.post('/admin/campaigns').type('form').send(await campaignForm());
    expect(response.status).toBe(303);
    const campaign = await platform.models.Campaign.findOne({ name: 'Spring wave 2026' }).lean();
    expect(campaign).toMatchObject({ strands: ['S1', 'S4'], languages: ['en', 'fr'], senderName: 'VET working group', replyTo: 'wg@board.example' });
    expect(campaign!.templates.map((t) => `${t.language}:${t.kind}`)).toEqual(['en:invitation', 'en:reminder', 'fr:invitation', 'fr:reminder']);
    expect(campaign!.templates[0]!.body).toContain('{{link}}');
    const audit = await platform.models.AuditEntry.findOne({ action: 'campaign.create', target: `campaign:${campaign!._id}` }).lean();
    expect(audit?.actor).toBe(coordinator.user.email);
  });

  it('a text with an unknown placeholder is refused with the placeholder and the text named, and nothing changes', async () => {
    const campaign = await platform.models.Campaign.findOne({ name: 'Spring wave 2026' }).lean();
    const form = await campaignForm({ tpl_fr_reminder_body: 'Bonjour {{contactName}}, {{lien}} {{#each x}}{{/each}}', name: 'Renamed' });
    const response = await coordinator.agent.post(`/admin/campaigns/${campaign!._id}`).type('form').send(form);
    expect(response.status).toBe(400);
    expect(response.text).toContain('Français reminder text: unknown placeholder {{lien}}');
    expect(response.text).toContain('not {{#each}}');
    const after = await platform.models.Campaign.findById(campaign!._id).lean();
    expect(after?.name).toBe('Spring wave 2026');
    expect(after?.updatedAt?.getTime()).toBe(campaign!.updatedAt!.getTime());
  });

  it('a broken text (unclosed braces) is refused', async () => {
    const response = await coordinator.agent.post('/admin/campaigns').type('form').send(await campaignForm({ name: 'Broken', tpl_en_invitation_subject: 'Hello {{contactName' }));
    expect(response.status).toBe(400);
    expect(response.text).toContain('English invitation subject: the text cannot be read');
    expect(await platform.models.Campaign.exists({ name: 'Broken' })).toBeNull();
  });

  it('a last day before the opening day is refused in the words of the form; the same day makes a one-day campaign', async () => {
    const reversed = await coordinator.agent.post('/admin/campaigns').type('form').send(await campaignForm({ name: 'Reversed', opensOn: '2027-03-01', lastDay: '2027-02-01' }));
    expect(reversed.status).toBe(400);
    expect(reversed.text).toContain('the last day to answer comes before the opening day: choose a last day on or after it');
    expect(await platform.models.Campaign.exists({ name: 'Reversed' })).toBeNull();
    await coordinator.agent.post('/admin/campaigns').type('form').send(await campaignForm({ name: 'One day', opensOn: '2027-03-01', lastDay: '2027-03-01' })).expect(303);
  });

  it('editing a campaign records which fields changed', async () => {
    const campaign = await platform.models.Campaign.findOne({ name: 'Spring wave 2026' }).lean();
    const form = await campaignForm({ tpl_en_invitation_subject: 'Please answer, {{contactName}}' });
    await coordinator.agent.post(`/admin/campaigns/${campaign!._id}`).type('form').send(form).expect(303);
    const after = await platform.models.Campaign.findById(campaign!._id).lean();
    expect(after!.templates.find((t) => t.language === 'en' && t.kind === 'invitation')?.subject).toBe('Please answer, {{contactName}}');
    const audit = await platform.models.AuditEntry.findOne({ action: 'campaign.update' }).lean();
    expect(JSON.parse(audit!.details!)).toEqual({ changed: ['templates'] });
  });

  it('inviting creates one personal link per active contact, once; the preview shows contact names escaped', async () => {
    const campaign = await platform.models.Campaign.findOne({ name: 'Spring wave 2026' }).lean();
    const make = async (name: string, country: string, active = true) =>
      platform.models.Institution.create({ name, country, type: 'ivet_school', key: institutionKey({ name, country }), active });
    const school = await make('École <b>Bold</b>', 'FR');
    const closed = await make('Closed School', 'BE', false);
    await platform.models.Contact.create([
      { institution: school._id, name: '<script>alert("x")</script> Dupont', email: 'dupont@ecole.example', language: 'fr' },
      { institution: school._id, name: 'Hans Deutsch', email: 'hans@ecole.example', language: 'de' },
      { institution: school._id, name: 'Gone', email: 'gone@ecole.example', active: false },
      { institution: school._id, name: 'Unsub', email: 'unsub@ecole.example', unsubscribedAt: new Date() },
      { institution: closed._id, name: 'Closed', email: 'closed@closed.example' },
    ]);
    await coordinator.agent.post(`/admin/campaigns/${campaign!._id}/invite`).type('form').send({ _csrf: coordinator.csrf }).expect(303);
    const invitations = await platform.models.Invitation.find({ campaign: campaign!._id }).lean();
    expect(invitations).toHaveLength(2);
    // The campaign offers en and fr: the German-speaking contact gets the first offered language.
    expect(invitations.map((i) => i.language).sort()).toEqual(['en', 'fr']);
    await coordinator.agent.post(`/admin/campaigns/${campaign!._id}/invite`).type('form').send({ _csrf: coordinator.csrf }).expect(303);
    expect(await platform.models.Invitation.countDocuments({ campaign: campaign!._id })).toBe(2);
    const audit = await platform.models.AuditEntry.find({ action: 'campaign.invite' }).sort({ _id: 1 }).lean();
    expect(audit.map((a) => JSON.parse(a.details!))).toEqual([
      { created: 2, total: 2, audience: 'all active contacts' },
      { created: 0, total: 2, audience: 'all active contacts' },
    ]);

    const preview = await coordinator.agent.get(`/admin/campaigns/${campaign!._id}/preview`).expect(200);
    expect(preview.text).toContain('Bonjour &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Dupont');
    expect(preview.text).toContain('École &lt;b&gt;Bold&lt;/b&gt;');
    expect(preview.text).not.toContain('<script>alert');
    expect(preview.text).toContain('Please answer, Hans Deutsch');
  });

  it("the campaign list shows each campaign's own number of personal links", async () => {
    await coordinator.agent.post('/admin/campaigns').type('form').send(await campaignForm({ name: 'Autumn wave 2026' })).expect(303);
    const list = await coordinator.agent.get('/admin/campaigns').expect(200);
    const linksOf = (name: string) => list.text.match(new RegExp(`${name}</a>[\\s\\S]*?<td>(\\d+)</td>\\s*</tr>`))?.[1];
    expect(linksOf('Spring wave 2026')).toBe('2');
    expect(linksOf('Autumn wave 2026')).toBe('0');
  });

  it('the inviting and the campaign pages are refused to reviewers and without the CSRF token', async () => {
    const campaign = await platform.models.Campaign.findOne({ name: 'Spring wave 2026' }).lean();
    const reviewer = await signIn(platform, 'reviewer');
    expect((await reviewer.agent.get('/admin/campaigns')).status).toBe(403);
    expect((await reviewer.agent.post(`/admin/campaigns/${campaign!._id}/invite`).type('form').send({ _csrf: reviewer.csrf })).status).toBe(403);
    expect((await coordinator.agent.post(`/admin/campaigns/${campaign!._id}/invite`).type('form').send({})).status).toBe(403);
  });
});

describe('rendering a campaign email', () => {
  const values = { contactName: 'Ann <O\'Neil>', institutionName: 'Tech & Trade', link: 'https://survey.example/s/abc', deadline: '30 April 2026', unsubscribeLink: 'https://survey.example/u/xyz' };

  it('keeps the plain text as written and escapes every value in the HTML', () => {
    const email = renderCampaignEmail({ name: 'Wave', templates: [] }, 'invitation', 'en', values);
    expect(email.subject).toBe('Your view on staff mobility in VET: Wave');
    expect(email.text).toContain("Dear Ann <O'Neil>,");
    expect(email.html).toContain('Dear Ann &lt;O&#x27;Neil&gt;,');
    expect(email.html).toContain('Tech &amp; Trade');
    expect(email.html).toContain('<a href="https://survey.example/s/abc">https://survey.example/s/abc</a>');
  });

  it('a reminder to someone who started says they can finish where they left off', () => {
    const started = renderCampaignEmail({ name: 'Wave' }, 'reminder', 'de', { ...values, started: true });
    const notStarted = renderCampaignEmail({ name: 'Wave' }, 'reminder', 'de', values);
    expect(started.text).toContain('dort weitermachen, wo Sie aufgehört haben');
    expect(notStarted.text).not.toContain('weitermachen, wo');
  });

  it('a subject cannot carry a line break into the headers', () => {
    const email = renderCampaignEmail({ name: 'Wave', templates: [{ kind: 'invitation', language: 'en', subject: 'Hi {{contactName}}', body: 'x' }] }, 'invitation', 'en', { ...values, contactName: 'A\r\nBcc: victim@example.org' });
    expect(email.subject).toBe('Hi A Bcc: victim@example.org');
  });
});
