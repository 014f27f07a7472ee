/**
 * npm run bench:sending-page [-- --contacts 3000 --earlier 3 --loads 5]
 *
 * The sending page's figures (sendingFigures: its counts by round, failed and
 * unknown messages) on the embedded FerretDB of a temporary directory, with
 * --earlier campaigns before this one, each of --contacts invitation emails
 * sent (a tenth failed): the email history that a read by a filter goes
 * through. A process loads the page once and ends, as the platform before a
 * restart; then, each on a connection of its own as a process just started:
 * the first load, loads with nothing changed, a load after a reminder round
 * adds --contacts messages, the first load of another process after
 * that round, and the first loads of two more once the checkpoint's whole
 * read is 11 minutes old (past KEPT_MAX_AGE_MS). Prints each load's wall time, the database engine's CPU (a
 * process of its own) and the load average, since the machine is shared,
 * and whether the counts are those of a read of the whole history.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { EmailChanges, journalEmailChanges } from '../server/mail/email-changes.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { countByRound, enqueueMessages } from '../server/mail/outbox.service.ts';
import { sendingFigures } from '../server/mail/sending-progress.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { loadAverage } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '3000' },
    earlier: { type: 'string', default: '3' },
    loads: { type: 'string', default: '5' },
  },
});
const contactCount = Number(args.contacts);

const dataDir = mkdtempSync(join(tmpdir(), 'bench-sending-page-'));
const engine = await startEmbeddedEngine({ dataDir });
const engineCpuMs = () => (processCpuSeconds(engine.pid) ?? 0) * 1000;
try {
  const uri = `${engine.uri}/bench`;
  const connection = await connect(uri);
  const models = defineModels(connection);
  await ensureIndexes(models);
  const now = () => new Date();
  const tokenKey = randomBytes(32);
  const institutions = await models.Institution.insertMany(
    Array.from({ length: contactCount }, (_, i) => ({ name: `School ${i}`, country: 'AT', type: 'ivet_school', key: institutionKey({ name: `School ${i}`, country: 'AT' }) })),
    { lean: true },
  );
  const contacts = institutions.map((institution, i) => ({ _id: new Types.ObjectId(), institution: institution._id, name: `Leader ${i}`, email: `c${i}@bench.example`, language: 'en' as const }));
  await models.Contact.insertMany(contacts, { lean: true });
  /** A campaign whose invitations went out: claims and outcomes in bulk (a tenth failed), journalled as a sender journals them. */
  const campaignSent = async (name: string) => {
    const campaign = await models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
    const id = campaign._id as Types.ObjectId;
    await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, id, contacts);
    await enqueueInvitations({ models, now }, id, 'bench');
    const sent = await models.Outbox.find({ campaign: id }, { _id: 1 }).lean();
    const at = now();
    const claims = sent.map((m) => ({ _id: `${m._id}:0`, message: m._id, campaign: id, attempt: 0, worker: 'bench', at }));
    const outcomes = sent.map((m, i) => ({ _id: `${m._id}:0`, message: m._id, campaign: id, attempt: 0, state: i % 10 === 9 ? 'failed' : 'sent', at }));
    await models.OutboxClaim.insertMany(claims, { lean: true });
    await models.OutboxOutcome.insertMany(outcomes, { lean: true });
    const changes = new EmailChanges();
    for (const claim of claims) changes.add(id, { claim: claim._id });
    for (const outcome of outcomes) changes.add(id, { outcome: [outcome._id, outcome.state] });
    await journalEmailChanges(models, changes);
    return id;
  };
  for (let i = 0; i < Number(args.earlier); i++) await campaignSent(`Earlier ${i + 1}`);
  const campaignId = await campaignSent('Benchmark');
  console.log(`sending page's figures, ${args.earlier} earlier campaigns and this one, ${contactCount} invitation emails each (a tenth failed)`);

  /** A process of its own: a connection and models of its own, so nothing kept by another is shared. */
  const startProcess = async () => {
    const own = await connect(uri);
    return { models: defineModels(own), close: () => own.close() };
  };
  const truth = async () => countByRound({ models }, campaignId);
  const timed = async (label: string, reader: { models: typeof models }) => {
    const [engineBefore, start] = [engineCpuMs(), performance.now()];
    const { counts } = await sendingFigures(reader, campaignId);
    const t = { ms: performance.now() - start, engineMs: engineCpuMs() - engineBefore };
    const exact = isDeepStrictEqual(counts, await truth());
    console.log(`${label.padEnd(46)} ${t.ms.toFixed(1).padStart(8)} ms   engine CPU ${t.engineMs.toFixed(0).padStart(5)} ms   ${exact ? 'counts as a whole read' : 'COUNTS DIFFER'}   load ${loadAverage()}`);
    return t;
  };

  // The platform before its restart loaded the page once.
  const before = await startProcess();
  await sendingFigures(before, campaignId);
  await before.close();

  const started = await startProcess();
  await timed('first load after a start', started);
  for (let i = 0; i < Number(args.loads); i++) await timed('nothing changed', started);
  const round = await enqueueMessages(
    { models, now },
    'reminder',
    1,
    (await models.Invitation.find({ campaign: campaignId }, { _id: 1, contact: 1 }).lean()).map((link, i) => ({ campaign: campaignId, contact: link.contact, invitation: link._id, to: `c${i}@bench.example`, language: 'en' })),
  );
  await timed(`after a round adds ${round} messages`, started);
  await timed('nothing changed', started);
  await started.close();
  const later = await startProcess();
  await timed('first load after a start, after the round', later);
  await later.close();
  // Nobody read the history whole for longer than a follower trusts its own read: the checkpoint's whole read is made 11 minutes old.
  const aged = new Date(Date.now() - 11 * 60_000);
  await models.EmailChange.collection.updateOne({ _id: `${campaignId}:checkpoint` } as never, { $set: { w: aged, t: aged } });
  const afterIdle = await startProcess();
  await timed('first load, checkpoint read whole 11 min ago', afterIdle);
  await timed('nothing changed', afterIdle);
  await afterIdle.close();
  const next = await startProcess();
  await timed('first load of another process after that', next);
  await next.close();
  await connection.close();
} finally {
  await engine.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
