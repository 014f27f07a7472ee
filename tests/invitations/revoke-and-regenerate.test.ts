import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { bootOf, respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform();
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

/** A contact who has submitted once, so there are answers to keep. */
async function submittedContact(language: 'en' | 'fr' | 'de' = 'en') {
  const invited = await createInvitedContact(platform, { language });
  await respondent(platform, invited.path, invited.invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 0, language }).expect(201);
  return invited;
}

async function auditOf(action: string, target: string) {
  return platform.models.AuditEntry.find({ action, target }).lean();
}

describe('revoking personal links', () => {
  it('when a contact is deactivated, its link answers 410 and its submitted answers are kept', async () => {
    const { path, invitation, contact } = await submittedContact('fr');
    const { agent, csrf } = coordinator;
    await agent.post(`/admin/contacts/${contact._id}/active`).type('form').send({ _csrf: csrf, active: 'false' }).expect(303);

    const page = await request(platform.app).get(path).expect(410);
    expect(page.text).toContain('Ce lien n’est plus valable');
    const stored = await platform.models.Invitation.findById(invitation._id).lean();
    expect(stored).toMatchObject({ revokedReason: 'contact-deactivated', revision: 1 });
    expect(stored?.revokedAt).toBeInstanceOf(Date);
    expect(await platform.models.Response.countDocuments({ _id: invitation._id })).toBe(1);
    const [entry] = await auditOf('contact.deactivate', `contact:${contact._id}`);
    expect(JSON.parse(entry!.details!)).toEqual({ revokedLinks: 1 });
  });

  it('when an institution is deactivated, the links of all its contacts in every campaign stop working', async () => {
    const first = await createInvitedContact(platform, { language: 'de' });
    const second = await createInvitedContact(platform);
    // Another contact of the same institution, in the second campaign.
    const colleague = await platform.models.Contact.create({ institution: first.institution._id, name: 'Colleague', email: `colleague-${first.contact._id}@school.example` });
    const { createInvitations, personalLink } = await import('../../server/invitations/invitation.service.ts');
    await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, second.campaignId, [colleague]);
    const colleagueInvitation = (await platform.models.Invitation.findOne({ contact: colleague._id }).lean())!;
    const colleaguePath = personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, colleagueInvitation);
    await request(platform.app).get(colleaguePath).expect(200);

    const { agent, csrf } = coordinator;
    await agent.post(`/admin/institutions/${first.institution._id}/active`).type('form').send({ _csrf: csrf, active: 'false' }).expect(303);
    await request(platform.app).get(first.path).expect(410);
    await request(platform.app).get(colleaguePath).expect(410);
    // Another institution's link in the same campaign keeps working.
    await request(platform.app).get(second.path).expect(200);
    const [entry] = await auditOf('institution.deactivate', `institution:${first.institution._id}`);
    expect(JSON.parse(entry!.details!)).toEqual({ revokedLinks: 2 });
  });

  it('when the coordinator revokes one link from the institution page, it answers 410 and the revocation is audited', async () => {
    const { path, invitation, institution } = await submittedContact('de');
    const { agent, csrf } = coordinator;
    const page = await agent.get(`/admin/institutions/${institution._id}`).expect(200);
    expect(page.text).toContain(`action="/admin/invitations/${invitation._id}/revoke"`);
    // Without the form's CSRF token nothing happens.
    await agent.post(`/admin/invitations/${invitation._id}/revoke`).type('form').send({}).expect(403);
    await request(platform.app).get(path).expect(200);

    await agent.post(`/admin/invitations/${invitation._id}/revoke`).type('form').send({ _csrf: csrf }).expect(303);
    const gone = await request(platform.app).get(path).expect(410);
    expect(gone.text).toContain('Dieser Link ist nicht mehr gültig');
    await respondent(platform, path, invitation.tokenHash).submit({ data: completeAnswers(), baseRevision: 1, language: 'de' }).expect(410);
    expect(await platform.models.ResponseRevision.countDocuments({ invitation: invitation._id })).toBe(1);
    expect(await auditOf('invitation.revoke', `invitation:${invitation._id}`)).toHaveLength(1);
    expect((await agent.get(`/admin/institutions/${institution._id}`).expect(200)).text).toContain('Revoked (by a coordinator)');
  });
});

describe('replacing a personal link', () => {
  async function regenerate(agent: SignedInAgent['agent'], csrf: string, invitationId: unknown, replacing: number) {
    const res = await agent.post(`/admin/invitations/${invitationId}/regenerate`).type('form').send({ _csrf: csrf, replacing: String(replacing) }).expect(200);
    const link = /value="(\/s\/[^"]+)"/.exec(res.text)?.[1];
    if (!link) throw new Error('the page shows no new link');
    return link;
  }

  it('when a link is replaced, the old one answers 410 in the respondent language and the new one opens the same draft', async () => {
    const { path, invitation, institution } = await createInvitedContact(platform, { language: 'de' });
    const draft = { P1: 'AT', P2: 'ivet_dual' };
    await respondent(platform, path, invitation.tokenHash).saveDraft({ data: draft, pageNo: 2, baseRevision: 0, language: 'de' }).expect(200);

    const { agent, csrf } = coordinator;
    const page = await agent.get(`/admin/institutions/${institution._id}`).expect(200);
    expect(page.text).toContain(`action="/admin/invitations/${invitation._id}/regenerate"`);
    const fresh = await regenerate(agent, csrf, invitation._id, 0);
    expect(fresh).not.toBe(path);

    const old = await request(platform.app).get(path).expect(410);
    expect(old.text).toContain('Dieser Link wurde ersetzt');
    expect(old.text).toContain('<html lang="de">');
    const opened = bootOf((await request(platform.app).get(fresh).expect(200)).text);
    expect(opened).toMatchObject({ pageNo: 2, data: draft, language: 'de' });

    const stored = (await platform.models.Invitation.findById(invitation._id))!;
    expect(stored.tokenGeneration).toBe(1);
    const r = respondent(platform, fresh, stored.tokenHash);
    await r.submit({ data: completeAnswers(), baseRevision: 0, language: 'de' }).expect(201);
    expect(await auditOf('invitation.regenerate', `invitation:${invitation._id}`)).toHaveLength(1);
  });

  it('when the coordinator double-clicks "Make a new link", one new link is made and both clicks show it', async () => {
    const { path, invitation } = await createInvitedContact(platform);
    const { agent, csrf } = coordinator;
    const [a, b] = await Promise.all([regenerate(agent, csrf, invitation._id, 0), regenerate(agent, csrf, invitation._id, 0)]);
    expect(a).toBe(b);
    expect((await platform.models.Invitation.findById(invitation._id).lean())?.tokenGeneration).toBe(1);
    await request(platform.app).get(a).expect(200);
    await request(platform.app).get(path).expect(410);
    expect(await auditOf('invitation.regenerate', `invitation:${invitation._id}`)).toHaveLength(1);
  });

  it('when a revoked link is replaced, the new link works again; for a deactivated contact it is refused', async () => {
    const revoked = await submittedContact();
    const { agent, csrf } = coordinator;
    await agent.post(`/admin/invitations/${revoked.invitation._id}/revoke`).type('form').send({ _csrf: csrf }).expect(303);
    const fresh = await regenerate(agent, csrf, revoked.invitation._id, 0);
    const page = await request(platform.app).get(fresh).expect(200);
    expect(page.text).toContain('Correct my answers');
    await request(platform.app).get(revoked.path).expect(410);

    const inactive = await createInvitedContact(platform);
    await agent.post(`/admin/contacts/${inactive.contact._id}/active`).type('form').send({ _csrf: csrf, active: 'false' }).expect(303);
    const refused = await agent.post(`/admin/invitations/${inactive.invitation._id}/regenerate`).type('form').send({ _csrf: csrf, replacing: '0' }).expect(409);
    expect(refused.text).toContain('reactivate it before making a new link');
    expect((await platform.models.Invitation.findById(inactive.invitation._id).lean())?.tokenGeneration).toBe(0);
  });
});
