/**
 * npm run bench:send-request [-- --contacts 3000 --senders 3 --rate 20]
 *
 * How long the coordinator's "Send the invitations" (POST
 * /admin/campaigns/:id/send) takes with N contacts while senders are busy:
 * an earlier campaign's N invitations are being sent by --senders sender
 * processes (scripts/run-sender.ts, --rate messages a second each) to an SMTP
 * sink in another process, on the embedded FerretDB of a temporary directory.
 * The app runs in this process with the background queueing and the
 * contact list's follower as index.ts wires them. Prints the time of the confirmation page (three loads; then,
 * on a fourth campaign, the campaign's own page and the confirmation's first
 * load after it), of the POST (to its 303), until the background has queued
 * every invitation, what a first load reads timed apart (the campaign's
 * links from their compact copy and, as before, from the invitations
 * collection; the contact list), and, for
 * comparison, what the request did before (the dry run and the queueing, in
 * the request) on a third campaign, with the load average at each step.
 * Each first load also prints its database commands (by command and
 * collection: how many, documents returned, their time). Between the third
 * load and the POST, another connection (as the command line would) imports a
 * CSV that changes one institution's type: the page is loaded once after 5 s
 * (the coordinator reading the import's result), then three times each at once
 * after such an import, and the campaign page likewise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import request from 'supertest';
import { createUser } from '../server/accounts/user.service.ts';
import { createApp } from '../server/app.ts';
import { followContactList } from '../server/campaigns/audience-state.ts';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { importContacts } from '../server/institutions/import.service.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { readCampaignLinkEntries } from '../server/invitations/link-copy.store.ts';
import { enqueueInvitations, invitationDryRun } from '../server/mail/invitation-mail.service.ts';
import { startInvitationQueue } from '../server/mail/invitation-send.service.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { startSinkProcess } from './smtp-sink-process.ts';
import { loadAverage } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '3000' },
    senders: { type: 'string', default: '3' },
    rate: { type: 'string', default: '20' },
  },
});
const contactCount = Number(args.contacts);
const seconds = (from: number) => ((performance.now() - from) / 1000).toFixed(2);

const dataDir = mkdtempSync(join(tmpdir(), 'bench-send-request-'));
const engine = await startEmbeddedEngine({ dataDir });
const sink = await startSinkProcess(0);
const senders: ChildProcess[] = [];
try {
  const dbName = 'bench';
  const connection = await connect(`${engine.uri}/${dbName}`, { monitorCommands: true });
  const models = defineModels(connection);
  // The app's database commands, while `commands` is set: by command and collection, how many, documents returned, time (wall).
  let commands: Map<string, { count: number; docs: number; ms: number }> | undefined;
  const startedCommands = new Map<number, string>();
  connection.getClient().on('commandStarted', (event) => {
    const command = event.command as Record<string, unknown>;
    startedCommands.set(event.requestId, `${event.commandName} ${String((event.commandName === 'getMore' ? command.collection : command[event.commandName]) ?? '')}`);
  });
  const commandEnded = (event: { requestId: number; duration: number; reply?: unknown }) => {
    const key = startedCommands.get(event.requestId);
    startedCommands.delete(event.requestId);
    if (!key || !commands) return;
    const cursor = (event.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
    const tally = commands.get(key) ?? { count: 0, docs: 0, ms: 0 };
    tally.count += 1;
    tally.docs += (cursor?.firstBatch ?? cursor?.nextBatch ?? []).length;
    tally.ms += event.duration;
    commands.set(key, tally);
  };
  connection.getClient().on('commandSucceeded', commandEnded);
  connection.getClient().on('commandFailed', commandEnded);
  const describeCommands = () =>
    [...(commands ?? [])]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([key, t]) => `${key} ×${t.count} (${t.docs} docs, ${(t.ms / 1000).toFixed(2)} s)`)
      .join('; ');
  await ensureIndexes(models);
  const now = () => new Date();
  const tokenKey = randomBytes(32);
  const setupStart = performance.now();
  const institutions = await models.Institution.insertMany(
    Array.from({ length: contactCount }, (_, i) => ({ name: `School ${i}`, country: 'DE', type: 'ivet_school', key: institutionKey({ name: `School ${i}`, country: 'DE' }) })),
    { lean: true },
  );
  const contacts = institutions.map((institution, i) => ({ _id: new Types.ObjectId(), institution: institution._id, name: `Leader ${i}`, email: `c${i}@bench.example`, language: 'en' }));
  await models.Contact.insertMany(contacts, { lean: true });
  const campaign = async (name: string) => {
    const created = await models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
    await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, created._id, contacts);
    return created._id as Types.ObjectId;
  };
  const [earlier, target, before, browsed] = [await campaign('Earlier'), await campaign('Benchmark'), await campaign('The request as it was'), await campaign('Its page first')];
  await enqueueInvitations({ models, now }, earlier, 'bench');
  console.log(`set-up: ${contactCount} contacts, three campaigns with their links, the first one's ${contactCount} invitations queued, in ${seconds(setupStart)} s`);

  for (let i = 0; i < Number(args.senders); i++) {
    senders.push(
      spawn(process.execPath, ['scripts/run-built.mjs', 'scripts/run-sender.ts'], {
        env: {
          PATH: process.env.PATH,
          NODE_ENV: 'test',
          MONGODB_URI: `${engine.uri}/${dbName}`,
          SMTP_URL: sink.url,
          TOKEN_KEY: tokenKey.toString('hex'),
          PUBLIC_URL: 'http://survey.test',
          SEND_RATE_PER_SECOND: args.rate,
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      }),
    );
  }
  const received = async () => Object.values((await sink.report()).counts).reduce((a, b) => a + b, 0);
  while ((await received()) === 0) await sleep(200);
  console.log(`${senders.length} senders are sending the earlier campaign (${await received()} messages at the relay); load average ${loadAverage()}`);

  const queue = startInvitationQueue({ models, now });
  // As index.ts: the contact list read at start and followed in the background.
  const followStart = performance.now();
  const follower = followContactList(models);
  await follower.ready();
  console.log(`the contact list read at start in the background: ${seconds(followStart)} s; load average ${loadAverage()}`);
  const app = createApp({
    models,
    questionnaires: new QuestionnaireRegistry(),
    secrets: { tokenKey, sessionSecret: randomBytes(32).toString('base64url'), tagKey: randomBytes(32) },
    now,
    queueInvitations: () => queue.request(),
    logger: undefined,
    options: { bodyLimit: 256 * 1024, tokenRateLimit: 10_000, cacheViews: true },
  });
  const password = randomBytes(12).toString('base64url');
  await createUser({ models, now }, { name: 'Bench coordinator', email: 'coordinator@bench.example', role: 'coordinator', password }, 'bench');
  const agent = request.agent(app);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const loginPage = await agent.get('/login');
  const login = await agent.post('/login').type('form').send({ email: 'coordinator@bench.example', password, _csrf: csrfOf(loginPage.text) });
  if (login.status !== 303) throw new Error(`sign-in failed: ${login.status} ${login.text.slice(0, 300)}`);

  // The first load computes the dry run; the next ones find it kept (see invitationDryRun) until something it depends on changes.
  const timedLoad = async (which: string, url: string, withCommands = false) => {
    commands = withCommands ? new Map() : undefined;
    const start = performance.now();
    const cpu = process.cpuUsage();
    const text = (await agent.get(url).expect(200)).text;
    const used = process.cpuUsage(cpu);
    console.log(`${which}: ${seconds(start)} s (CPU of this process ${((used.user + used.system) / 1e6).toFixed(2)} s); load average ${loadAverage()}`);
    if (withCommands) console.log(`  its database commands: ${describeCommands()}`);
    commands = undefined;
    return text;
  };
  let page = '';
  for (const which of ['first load', 'second load', 'third load']) page = await timedLoad(`confirmation page, ${which}`, `/admin/campaigns/${target}/send`, which === 'first load');
  // The way a coordinator gets there: the campaign's page (its audience and links), then the confirmation, which finds them kept.
  await timedLoad("another campaign's campaign page", `/admin/campaigns/${browsed}`);
  await timedLoad("another campaign's confirmation page after it, first load", `/admin/campaigns/${browsed}/send`, true);
  // A contact-list change made by another process (the command line's import): one institution's type, then another's.
  const other = await connect(`${engine.uri}/${dbName}`);
  const changeType = (i: number, type: string) =>
    importContacts(
      { models: defineModels(other), now },
      `institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags\nSchool ${i},DE,${type},,Leader ${i},c${i}@bench.example,en,\n`,
      { commit: true, actor: 'bench' },
    );
  await changeType(0, 'ivet_dual');
  await sleep(5000);
  await timedLoad('confirmation page, 5 s after a contact imported by another process', `/admin/campaigns/${target}/send`, true);
  // Three times each: the confirmation page, and the campaign page, loaded at once after another process's import of one contact.
  for (let k = 1; k <= 3; k++) {
    await changeType(k, 'cvet_adult');
    page = await timedLoad(`confirmation page, at once after a contact imported by another process (${k})`, `/admin/campaigns/${target}/send`, k === 1);
    if (!page.includes('Dual or apprenticeship-based') || !page.includes('Continuing VET')) throw new Error("the page does not show the imported institutions' types");
  }
  for (let k = 4; k <= 6; k++) {
    await changeType(k, 'ivet_dual');
    const campaignPage = await timedLoad(`campaign page, at once after a contact imported by another process (${k - 3})`, `/admin/campaigns/${browsed}`, k === 4);
    if (!campaignPage.includes('Dual or apprenticeship-based')) throw new Error("the campaign page does not show the imported institution's type");
  }
  await other.close();
  let start = performance.now();
  const form = { _csrf: csrfOf(page), expected: /name="expected" value="(\d+)"/.exec(page)![1], sendNo: /name="sendNo" value="(\d+)"/.exec(page)![1] };
  start = performance.now();
  const answer = await agent.post(`/admin/campaigns/${target}/send`).type('form').send(form);
  console.log(`POST "Send the invitations" (${form.expected} emails): ${answer.status} in ${seconds(start)} s; load average ${loadAverage()}; ${await received()} messages at the relay`);
  for (;;) {
    const send = await models.InvitationSend.findById(`${target}:1`, { queued: 1, finishedAt: 1, refused: 1 }).lean();
    if (send?.finishedAt) {
      console.log(`queued in the background: ${send.queued} of ${form.expected}${send.refused ? ` (refused: ${send.refused})` : ''}, ${seconds(start)} s after the POST; load average ${loadAverage()}`);
      break;
    }
    await sleep(200);
  }
  await queue.stop();
  await follower.stop();

  // What a first load with nothing read before reads, timed apart (on the third campaign, with the senders still busy).
  const timed = async <T>(read: () => Promise<T>) => {
    const from = performance.now();
    await read();
    return seconds(from);
  };
  const fromCopy = await timed(() => readCampaignLinkEntries(models, before));
  const fromCollection = await timed(() => models.Invitation.find({ campaign: before }, { contact: 1, institution: 1, language: 1, revokedAt: 1 }).lean());
  const contactList = await timed(() =>
    Promise.all([models.Institution.find({}, { country: 1, type: 1 }).lean(), models.Contact.find({}, { email: 1, active: 1, unsubscribedAt: 1 }).lean(), models.Suppression.find({}, { email: 1 }).lean()]),
  );
  console.log(
    `a first load's reads, apart: the campaign's links from their compact copy ${fromCopy} s (from the invitations collection, as before: ${fromCollection} s), the contact list ${contactList} s; load average ${loadAverage()}`,
  );

  start = performance.now();
  await invitationDryRun({ models }, before);
  const result = await enqueueInvitations({ models, now }, before, 'bench');
  console.log(`for comparison, the request as it was (dry run and queueing ${result.added}, in the request): ${seconds(start)} s; load average ${loadAverage()}; ${await received()} messages at the relay`);
  await connection.close();
} finally {
  for (const sender of senders) sender.kill('SIGTERM');
  await Promise.all(senders.map((s) => new Promise((resolve) => (s.exitCode !== null ? resolve(null) : s.once('exit', resolve)))));
  sink.stop();
  await engine.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
