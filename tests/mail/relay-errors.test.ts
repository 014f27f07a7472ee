import { createServer, type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInvitations } from '../../server/mail/invitation-mail.service.ts';
import { sendDueMessages } from '../../server/mail/outbox-sender.service.ts';
import { csrfOf, signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { createCampaignWithContacts, drainOutbox, senderFor, statusesOf, statusOf } from '../helpers/mail.ts';
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

const deps = () => ({ models: platform.models, now: platform.clock.now });

function sender() {
  const { deps, policy, close } = senderFor(platform, sink.url);
  return { drain: () => drainOutbox(() => sendDueMessages(deps, policy)), close };
}

describe('errors of the relay rather than of an address', () => {
  it('a 530 at MAIL FROM suppresses no one, pauses the campaign with the relay\'s answer on the sending page, and "try again now" sends each message once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await enqueueInvitations(deps(), campaignId, 'test');
    sink.refuseSender(530, '5.7.0 Authentication required');
    const { drain, close } = sender();
    await drain();

    expect(await platform.models.Suppression.countDocuments({ email: { $in: emails } })).toBe(0);
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.map((s) => s.state)).toEqual(Array(6).fill('queued'));
    expect(statuses.every((s) => s.last?.relayError && s.last.smtpCommand === 'MAIL FROM' && /530 5\.7\.0 Authentication required/.test(s.last.error ?? ''))).toBe(true);
    expect(sink.countsByRecipient().get(emails[0]!)).toBeUndefined();
    // Paused: another pass at the same moment does not knock at the relay again.
    const attempts = statuses.map((s) => s.attempts);
    await drain();
    expect((await statusesOf(platform.models, campaignId)).map((s) => s.attempts)).toEqual(attempts);

    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    expect(page).toContain('Sending is paused');
    expect(page).toContain('wants a login before it takes mail');
    expect(page).toMatch(/530 5\.7\.0 Authentication required/);
    expect(page).toContain('No address was suppressed');

    // The relay is fixed; the coordinator does not wait for the end of the pause.
    sink.acceptSender();
    await coordinator.agent.post(`/admin/campaigns/${campaignId}/resume`).type('form').send({ _csrf: csrfOf(page) }).expect(303);
    expect(await platform.models.AuditEntry.exists({ action: 'mail.resume-sending', target: `campaign:${campaignId}` })).not.toBeNull();
    await drain();
    close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
    expect((await statusesOf(platform.models, campaignId)).every((s) => s.state === 'sent')).toBe(true);
    expect((await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text).not.toContain('Sending is paused');
  });

  it('a relay that denies relaying at RCPT TO (554 5.7.1 Relay access denied, every recipient) suppresses no one: the campaign is paused with what to fix, and each message goes once the relay relays', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 6 });
    await enqueueInvitations(deps(), campaignId, 'test');
    // Postfix's answer to a client it does not relay for (no login given): per recipient, though about the relay.
    sink.refuseRecipients(554, (email) => `5.7.1 <${email}>: Relay access denied`);
    const { drain, close } = sender();
    await drain();

    expect(await platform.models.Suppression.countDocuments({ email: { $in: emails } })).toBe(0);
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.map((s) => s.state)).toEqual(Array(6).fill('queued'));
    expect(statuses.every((s) => s.last?.relayError && s.last.smtpCommand === 'RCPT TO' && /Relay access denied/.test(s.last.error ?? ''))).toBe(true);
    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    expect(page).toContain('Sending is paused');
    expect(page).toContain('refuses to pass mail on for this platform');
    expect(page).toContain('No address was suppressed');

    sink.acceptRecipients();
    await coordinator.agent.post(`/admin/campaigns/${campaignId}/resume`).type('form').send({ _csrf: csrfOf(page) }).expect(303);
    await drain();
    close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
    expect((await statusesOf(platform.models, campaignId)).every((s) => s.state === 'sent')).toBe(true);
  });

  it('a login asked for at RCPT TO (530, or Exchange\'s 5.7.57) is the relay\'s too; a refusal about the recipient (550 5.7.1 Recipient address rejected) still suppresses that address', async () => {
    // Apart, so that the relay errors' pause holds nothing of it back.
    const about = await createCampaignWithContacts(platform, { contacts: 1 });
    const rejected = about.emails[0]!;
    sink.reply(rejected, 550, `5.7.1 <${rejected}>: Recipient address rejected: Access denied`, 1);
    await enqueueInvitations(deps(), about.campaignId, 'test');
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    const [loginWanted, exchange] = emails as [string, string];
    sink.reply(loginWanted, 530, '5.7.0 Authentication required', 1);
    sink.reply(exchange, 550, '5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM', 1);
    const { drain, close } = sender();
    await drain();
    await enqueueInvitations(deps(), campaignId, 'test');
    await drain();
    close();
    expect(await statusOf(platform.models, about.campaignId, rejected)).toMatchObject({ state: 'failed', permanent: true });
    expect(await statusOf(platform.models, campaignId, loginWanted)).toMatchObject({ state: 'queued' });
    expect(await statusOf(platform.models, campaignId, exchange)).toMatchObject({ state: 'queued' });
    expect((await platform.models.Suppression.find({ email: { $in: [rejected, ...emails] } }).lean()).map((s) => s.email)).toEqual([rejected]);
    // The relay errors paused that campaign: what is left of it waits for the pause, as after any relay error.
    await platform.models.SendingPause.deleteMany({ campaign: campaignId });
  });

  it('a 550 to RCPT TO suppresses only that address; the coordinator lifts it (audited, CSRF) and retries the failed message, which is delivered once', async () => {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 2 });
    const [refused, fine] = emails as [string, string];
    sink.reply(refused, 550, '5.1.1 No such user here', 1);
    await enqueueInvitations(deps(), campaignId, 'test');
    const { drain, close } = sender();
    await drain();
    expect(await statusOf(platform.models, campaignId, refused)).toMatchObject({ state: 'failed', permanent: true });
    expect((await platform.models.Suppression.find({ email: { $in: emails } }).lean()).map((s) => s.email)).toEqual([refused]);

    const list = (await coordinator.agent.get('/admin/suppressions').expect(200)).text;
    expect(list).toContain(refused);
    expect(list).toMatch(/550 5\.1\.1 No such user here/);
    const suppression = (await platform.models.Suppression.findOne({ email: refused }).lean())!;
    // Without the CSRF token nothing is lifted.
    await coordinator.agent.post(`/admin/suppressions/${suppression._id}/lift`).type('form').send({}).expect(403);
    expect(await platform.models.Suppression.exists({ email: refused })).not.toBeNull();
    await coordinator.agent.post(`/admin/suppressions/${suppression._id}/lift`).type('form').send({ _csrf: csrfOf(list) }).expect(303);
    expect(await platform.models.Suppression.exists({ email: refused })).toBeNull();
    const audit = await platform.models.AuditEntry.findOne({ action: 'mail.lift-suppression', target: `suppression:${refused}` }).lean();
    expect(audit).toMatchObject({ actor: coordinator.user.email });
    expect(JSON.parse(audit!.details!).reason).toMatch(/550 5\.1\.1 No such user here/);

    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    const retry = /action="(\/admin\/mail\/failed\/[0-9a-f]{24}:\d+)"/.exec(page)?.[1];
    expect(retry).toBeDefined();
    await coordinator.agent.post(retry!).type('form').send({ _csrf: csrfOf(page) }).expect(303);
    expect(await platform.models.AuditEntry.exists({ action: 'mail.retry-failed' })).not.toBeNull();
    await drain();
    close();
    expect(await statusOf(platform.models, campaignId, refused)).toMatchObject({ state: 'sent', attempts: 2 });
    expect(sink.countsByRecipient().get(refused)).toBe(1);
    expect(sink.countsByRecipient().get(fine)).toBe(1);
  });

  it('an unsubscription stays on the suppression list: it cannot be lifted', async () => {
    const email = 'gone@school.example';
    const suppression = await platform.models.Suppression.create({ email, reason: 'unsubscribed', at: platform.clock.now() });
    const list = (await coordinator.agent.get('/admin/suppressions').expect(200)).text;
    const response = await coordinator.agent.post(`/admin/suppressions/${suppression._id}/lift`).type('form').send({ _csrf: csrfOf(list) });
    expect(response.status).toBe(409);
    expect(await platform.models.Suppression.exists({ email })).not.toBeNull();
  });
});

describe('a relay that refuses the login, is not there, or refuses the message itself', () => {
  /** Sends a campaign's invitations through `url` and checks that nobody is suppressed and the campaign is paused with `explanation` on the sending page. */
  async function pausedBy(url: string, explanation: string, reply: RegExp) {
    const { campaignId, emails } = await createCampaignWithContacts(platform, { contacts: 3 });
    await enqueueInvitations(deps(), campaignId, 'test');
    const { deps: senderDeps, policy, close } = senderFor(platform, url);
    await drainOutbox(() => sendDueMessages(senderDeps, policy));
    close();
    expect(await platform.models.Suppression.countDocuments({ email: { $in: emails } })).toBe(0);
    const statuses = await statusesOf(platform.models, campaignId);
    expect(statuses.map((s) => [s.state, s.last?.relayError])).toEqual(Array(3).fill(['queued', true]));
    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    expect(page).toContain('Sending is paused');
    expect(page).toContain(explanation);
    expect(page).toMatch(reply);
    expect(page).toContain('No address was suppressed');
    return { campaignId, emails };
  }

  it('a refused login (EAUTH) pauses the campaign and suppresses no one', async () => {
    const server = new SMTPServer({
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(_auth, _session, callback) {
        callback(new Error('5.7.8 Authentication credentials invalid'));
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.server.address() as AddressInfo).port;
      await pausedBy(`smtp://survey:wrong@127.0.0.1:${port}`, 'The mail server refused the login: check the user and password in SMTP_URL.', /Authentication credentials invalid/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a relay that is not there (connection refused) pauses the campaign and suppresses no one', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await pausedBy(`smtp://127.0.0.1:${port}`, 'The mail server could not be reached', /ECONNREFUSED/);
  });

  it('a 554 to the data (the message itself refused) pauses the campaign and suppresses no one; once accepted, each contact gets one copy', async () => {
    sink.refuseData(554, '5.7.1 Message rejected as spam');
    const { campaignId, emails } = await pausedBy(sink.url, "The mail server refused the message itself (its content or size): check the campaign texts with the relay&#x27;s administrator.", /554 5\.7\.1 Message rejected as spam/);
    sink.acceptData();
    const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/sending`).expect(200)).text;
    await coordinator.agent.post(`/admin/campaigns/${campaignId}/resume`).type('form').send({ _csrf: csrfOf(page) }).expect(303);
    const { drain, close } = sender();
    await drain();
    close();
    const received = sink.countsByRecipient();
    for (const email of emails) expect(received.get(email), email).toBe(1);
  });
});

