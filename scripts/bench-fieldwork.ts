/**
 * npm run bench:fieldwork [-- --contacts 3000 --loads 10 --page fieldwork|reminders|sending|sending.json --earlier 0]
 *
 * The coordinator's fieldwork page (/admin/campaigns/:id/fieldwork), or the
 * reminders page with its dry run (--page reminders), the sending page or the
 * progress it polls (--page sending, sending.json), at N
 * contacts, on the embedded FerretDB of a temporary directory, the app in
 * this process: one campaign with a link per contact, its invitation emails
 * queued and their outcomes recorded (a tenth failed), a third of the links
 * opened and a fifth completed. Times the first load, --loads loads with
 * nothing changed, and a load after each kind of change another process
 * makes (an email outcome, a response, a contact's details, a change of
 * the contact list the journal cannot name; for the
 * progress poll, an outcome past the time it reuses a whole read), with this
 * process's CPU time and the database engine's (a process of its own), and
 * the load average, since the machine is shared. --earlier n: n campaigns
 * before it, to the same contacts, whose invitations went out the same way
 * (the email history that a read by a filter goes through). --responses:
 * store that many of the completed links' answers (response, revision and
 * analytic record, as a submission does), and make the response after the
 * loads a real one too (the personal-data page counts the answers).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Types } from 'mongoose';
import request from 'supertest';
import { createUser } from '../server/accounts/user.service.ts';
import { createApp } from '../server/app.ts';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { KEPT_MAX_AGE_MS, noteChange } from '../server/shared/change-stamp.ts';
import { linkProgressTestHooks } from '../server/fieldwork/link-progress.ts';
import { journalProgress } from '../server/respond/progress-changes.ts';
import { EmailChanges, journalEmailChanges } from '../server/mail/email-changes.ts';
import { POLL_GAP_MS } from '../server/mail/sending-progress.ts';
import { noteContactsChange } from '../server/shared/contact-changes.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { taggedRecordOf, writeRecord } from '../server/evidence/analytic-record.ts';
import { institutionTagger } from '../server/evidence/institution-tag.ts';
import { revisionId } from '../server/respond/response.model.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { loadAverage, median } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '3000' },
    loads: { type: 'string', default: '10' },
    page: { type: 'string', default: 'fieldwork' },
    earlier: { type: 'string', default: '0' },
    responses: { type: 'string', default: '0' },
  },
});
const PAGES = ['fieldwork', 'reminders', 'sending', 'sending.json', 'close', 'campaign', 'campaigns', 'institutions', 'institution', 'privacy', 'records'];
if (!PAGES.includes(args.page)) throw new Error(`--page: one of ${PAGES.join(', ')}, not "${args.page}"`);
const contactCount = Number(args.contacts);

const dataDir = mkdtempSync(join(tmpdir(), 'bench-fieldwork-'));
const engine = await startEmbeddedEngine({ dataDir });
/** The engine's CPU time so far (user + system), in ms. */
const engineCpuMs = () => (processCpuSeconds(engine.pid) ?? 0) * 1000;
try {
  const connection = await connect(`${engine.uri}/bench`);
  const models = defineModels(connection);
  await ensureIndexes(models);
  const now = () => new Date();
  const tokenKey = randomBytes(32);
  const countries = ['AT', 'DE', 'FR', 'IT', 'PL'];
  const institutions = await models.Institution.insertMany(
    Array.from({ length: contactCount }, (_, i) => {
      const name = `School ${i}`;
      const country = countries[i % countries.length]!;
      return { name, country, type: i % 3 ? 'ivet_school' : 'ivet_dual', key: institutionKey({ name, country }) };
    }),
    { lean: true },
  );
  const contacts = institutions.map((institution, i) => ({ _id: new Types.ObjectId(), institution: institution._id, name: `Leader ${i}`, email: `c${i}@bench.example`, language: 'en' }));
  await models.Contact.insertMany(contacts, { lean: true });
  /** A campaign to every contact whose invitations went out: what a finished sending leaves (claims and outcomes in bulk, a tenth failed). */
  const campaignSent = async (name: string) => {
    const campaign = await models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
    const id = campaign._id as Types.ObjectId;
    await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, id, contacts);
    await enqueueInvitations({ models, now }, id, 'bench');
    const sent = await models.Outbox.find({ campaign: id }, { _id: 1, invitation: 1 }).lean();
    const at = now();
    await models.OutboxClaim.insertMany(sent.map((m) => ({ _id: `${m._id}:0`, message: m._id, campaign: id, attempt: 0, worker: 'bench', at })), { lean: true });
    await models.OutboxOutcome.insertMany(
      sent.map((m, i) => ({ _id: `${m._id}:0`, message: m._id, campaign: id, attempt: 0, state: i % 10 === 9 ? 'failed' : 'sent', at })),
      { lean: true },
    );
    return { campaignId: id, messages: sent, at };
  };
  for (let i = 0; i < Number(args.earlier); i++) await campaignSent(`Earlier ${i + 1}`);
  const { campaignId, messages, at } = await campaignSent('Benchmark');
  const invitations = await models.Invitation.find({ campaign: campaignId }, { _id: 1 }).lean();
  const opened = invitations.filter((_, i) => i % 3 === 0).map((i) => i._id);
  await models.Invitation.updateMany({ _id: { $in: opened } }, { $set: { openedAt: at } });
  await models.Completion.insertMany(invitations.filter((_, i) => i % 5 === 0).map((i) => ({ _id: i._id, campaign: campaignId, at })), { lean: true });
  const tagKey = randomBytes(32);
  const registry = new QuestionnaireRegistry();
  const validator = registry.forStrands(['S1']).validator;
  const tagOf = institutionTagger(models, tagKey);
  /** A response as a submission stores it: its revision, the response, its analytic record (with its journal entry). */
  const responseDoc = (invitation: number, seed: number) => {
    const random = randomSource(seed);
    const result = validatedResponse(registry, syntheticAnswers(random, syntheticInstitution(random, seed)), ['S1']);
    if (!result.ok) throw new Error(`synthetic answers rejected: ${JSON.stringify(result.errors).slice(0, 200)}`);
    const id = invitations[invitation]!._id;
    return {
      _id: id,
      campaign: campaignId,
      invitation: id,
      institution: institutions[invitation]!._id,
      revision: 1,
      definitionVersion: result.version,
      strands: ['S1'],
      language: 'en' as const,
      submittedAt: at,
      data: result.data,
      items: result.items.filter((item) => validator.isFreeText(item.question)),
      profile: result.profile,
    };
  };
  const answered = invitations.map((_, i) => i).filter((i) => i % 5 === 0).slice(0, Number(args.responses));
  for (let start = 0; start < answered.length; start += 500) {
    const docs = answered.slice(start, start + 500).map((i) => responseDoc(i, i));
    await models.ResponseRevision.insertMany(docs.map((doc) => ({ ...doc, _id: revisionId(doc._id, 1) })), { lean: true });
    await models.Response.insertMany(docs, { lean: true });
    for (const doc of docs) await writeRecord(models, await taggedRecordOf(tagOf, doc, (question) => validator.isFreeText(question)));
  }

  const app = createApp({
    models,
    questionnaires: registry,
    secrets: { tokenKey, sessionSecret: randomBytes(32).toString('base64url'), tagKey },
    now,
    queueInvitations: () => undefined,
    logger: undefined,
    options: { bodyLimit: 256 * 1024, tokenRateLimit: 10_000, cacheViews: true },
  });
  const password = randomBytes(12).toString('base64url');
  await createUser({ models, now }, { name: 'Bench coordinator', email: 'coordinator@bench.example', role: 'coordinator', password }, 'bench');
  const agent = request.agent(app);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const csrf = csrfOf((await agent.get('/login')).text);
  const login = await agent.post('/login').type('form').send({ email: 'coordinator@bench.example', password, _csrf: csrf });
  if (login.status !== 303) throw new Error(`sign-in failed: ${login.status}`);
  console.log(`${args.page} page, ${contactCount} contacts, ${args.earlier} earlier campaigns and this one: ${messages.length} invitation emails with outcomes, ${opened.length} links opened, ${Math.ceil(invitations.length / 5)} completed, ${answered.length} with their answers stored`);

  const pathOf = (page: string) =>
    page === 'campaign'
      ? `/admin/campaigns/${campaignId}`
      : page === 'campaigns'
        ? '/admin/campaigns'
        : page === 'institutions'
          ? '/admin/institutions'
          : page === 'institution'
            ? `/admin/institutions/${institutions[0]!._id}`
            : page === 'privacy'
              ? '/admin/privacy'
              : page === 'records'
                ? '/admin/privacy/records'
                : `/admin/campaigns/${campaignId}/${page}`;
  /** One page load: wall time, this process's CPU and the engine's. */
  const timed = async () => {
    const [cpu, engineBefore, start] = [process.cpuUsage(), engineCpuMs(), performance.now()];
    const page = await agent.get(pathOf(args.page));
    if (page.status !== 200) throw new Error(`${args.page} page: ${page.status}`);
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000, engineMs: engineCpuMs() - engineBefore };
  };
  const line = (label: string, t: { ms: number; cpuMs: number; engineMs: number }) =>
    console.log(`${label.padEnd(44)} ${t.ms.toFixed(1).padStart(8)} ms   CPU ${t.cpuMs.toFixed(1).padStart(7)} ms   engine CPU ${t.engineMs.toFixed(0).padStart(5)} ms   load ${loadAverage()}`);

  const first = await timed();
  line('first load', first);
  const unchanged = [];
  for (let i = 0; i < Number(args.loads); i++) unchanged.push(await timed());
  line(`nothing changed (median of ${unchanged.length})`, { ms: median(unchanged.map((t) => t.ms)), cpuMs: median(unchanged.map((t) => t.cpuMs)), engineMs: median(unchanged.map((t) => t.engineMs)) });

  // Changes as another process writes them: the document, then its stamp.
  const failed = messages[9]!;
  // As a sender or a coordinator's retry writes it: the outcome, then its journal entry and stamp (email-changes.ts).
  const outcome = async () => {
    await models.OutboxOutcome.updateOne({ _id: `${failed._id}:0` }, { $set: { state: 'sent' } });
    await journalEmailChanges(models, new EmailChanges().add(campaignId, { outcome: [`${failed._id}:0`, 'sent'] }));
  };
  await outcome();
  line('after an email outcome', await timed());
  if (args.page === 'sending.json') {
    // The poll reuses a whole read for max(2 s, 4 × its time): past that, what it reads after an outcome.
    await sleep(Math.max(POLL_GAP_MS, 4 * first.ms) + 100);
    await outcome();
    line('after an email outcome, past the poll gap', await timed());
  }
  // As the respondent path writes them: the step, then its entry in the progress journal, which moves the progress stamp (progress-changes.ts).
  await models.Invitation.updateOne({ _id: invitations[4]!._id }, { $min: { openedAt: now() } });
  await journalProgress(models, campaignId, invitations[4]!._id, 'opened');
  line('after a first opening', await timed());
  // In the respondent path's order (respond.service.ts): the revision, the completion mark with its progress entry, the response, its record.
  const answeredAt = now();
  const doc = answered.length > 0 ? { ...responseDoc(1, 1), submittedAt: answeredAt } : undefined;
  if (doc) await models.ResponseRevision.create({ ...doc, _id: revisionId(doc._id, 1) });
  await models.Completion.create({ _id: invitations[1]!._id, campaign: campaignId, at: answeredAt });
  await journalProgress(models, campaignId, invitations[1]!._id, 'completed', answeredAt);
  await noteChange(models, 'completions', [campaignId]);
  if (doc) {
    await models.Response.create(doc);
    await writeRecord(models, await taggedRecordOf(tagOf, doc, (question) => validator.isFreeText(question)));
  }
  line('after a response', await timed());
  // As the contact's page saves it (institution.service.ts updateContact): the journal entry names the contact.
  await models.Contact.updateOne({ _id: contacts[2]!._id }, { $set: { name: 'Renamed leader' } });
  await noteContactsChange(models, { contacts: [contacts[2]!._id] });
  line("after a contact's details", await timed());
  // A change of the list that names nothing (an erasure, a purge, demo data): every reader reads the whole list.
  await models.Contact.updateOne({ _id: contacts[3]!._id }, { $set: { name: 'Renamed again' } });
  await noteContactsChange(models);
  line('after a change the journal cannot name', await timed());
  if (args.page === 'fieldwork') {
    // The links' progress read whole KEPT_MAX_AGE_MS ago, nothing changed since: read whole again beside the load.
    linkProgressTestHooks.age(models, campaignId, KEPT_MAX_AGE_MS);
    line('after the progress is 10 minutes old', await timed());
    await linkProgressTestHooks.refreshed(models, campaignId);
    line('after its read beside that load', await timed());
  }
  await connection.close();
} finally {
  await engine.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
