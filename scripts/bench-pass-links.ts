/**
 * npm run bench:pass-links [-- --links 3000 --history 0,3,10 --completions 1000 --suppressions 300 --rounds 5 --repeat 3]
 *
 * What a sender pass's read costs as history grows: a campaign of --links
 * links with every invitation due, and earlier campaigns of as many links
 * each (closed; 0, then 3, then 10 of them by default), each with
 * --completions completion marks, in the same collections, on the embedded
 * engine of a temporary data directory, with --suppressions addresses on
 * the suppression list (refused by the relay). Five reads, alternated within each
 * round so that the busy machine weighs on each alike, each --repeat times
 * per measurement:
 *
 *   whole   the links of the due campaigns by a filter on the campaign (what a
 *           pass read before the copy held the generation): every link of every campaign
 *   copy    the due campaign's compact copy (readCampaignLinkEntries), as a pass reads it now
 *   marks   the due campaign's completion marks by a filter on the campaign (what a pass
 *           read before it looked up each reminder's mark in its window): every mark stored
 *   suppressed  the suppression list, as a pass reads it for a window at most every 250 ms
 *   pass    the pass's whole read as the code under test does it (findDueMessages:
 *           the due view, the campaigns, the contact list, the links, ...)
 *
 * and, for comparison with reading each window's links and marks by _id, the
 * cost of one link and of one completion mark read by _id (windows of 20 in
 * parallel, 200 of each): a reminder costs one of each in its window.
 * Printed per read: the database engine's CPU (from /proc) and the wall time,
 * per read, the median of the rounds, with the load average.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { readCampaignLinkEntries } from '../server/invitations/link-copy.store.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { DEFAULT_POLICY, findDueMessages, type SenderDeps } from '../server/mail/outbox-sender.service.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { loadAverage, median } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    links: { type: 'string', default: '3000' },
    history: { type: 'string', default: '0,3,10' },
    completions: { type: 'string', default: '1000' },
    suppressions: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '3' },
  },
});
const linkCount = Number(args.links);
const histories = args.history.split(',').map(Number).sort((a, b) => a - b);
const completionCount = Number(args.completions);
const rounds = Number(args.rounds);
const repeat = Number(args.repeat);

const dataDir = mkdtempSync(join(tmpdir(), 'bench-pass-links-'));
const engine = await startEmbeddedEngine({ dataDir });
/** The engine's CPU time so far (user + system), in ms. */
const engineCpuMs = () => (processCpuSeconds(engine.pid) ?? 0) * 1000;
try {
  const connection = await connect(`${engine.uri}/bench`);
  const models = defineModels(connection);
  await ensureIndexes(models);
  const now = () => new Date();
  const tokenKey = randomBytes(32);
  const linkDeps = { models, tokenKey, publicUrl: 'http://survey.test' };
  const institutions = await models.Institution.insertMany(
    Array.from({ length: linkCount }, (_, i) => ({ name: `School ${i}`, country: 'DE', type: 'ivet_school', key: institutionKey({ name: `School ${i}`, country: 'DE' }) })),
    { lean: true },
  );
  const contacts = institutions.map((institution, i) => ({ _id: new Types.ObjectId(), institution: institution._id, name: `Leader ${i}`, email: `c${i}@bench.example`, language: 'en' }));
  await models.Contact.insertMany(contacts, { lean: true });
  await models.Suppression.insertMany(
    Array.from({ length: Number(args.suppressions) }, (_, i) => ({ email: `gone${i}@bench.example`, reason: '550 5.1.1 <gone@bench.example>: Recipient address rejected: User unknown in virtual mailbox table', at: new Date(), campaign: new Types.ObjectId() })),
    { lean: true },
  );
  const campaign = (name: string) =>
    models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
  const target = await campaign('Due now');
  await createInvitations(linkDeps, target._id, contacts);
  await enqueueInvitations({ models, now }, target._id, 'bench');
  const deps: SenderDeps = {
    models,
    // Never called: a read hands nothing to a relay.
    transport: { sendMail: () => Promise.reject(new Error('no sending in this benchmark')) },
    tokenKey,
    publicUrl: 'http://survey.test',
    from: 'Survey <survey@bench.test>',
    now,
    workerId: 'bench',
  };
  const { due } = await findDueMessages(deps, DEFAULT_POLICY);
  console.log(`due campaign: ${linkCount} links, ${due.length} invitations due; ${args.suppressions} addresses suppressed; ${rounds} rounds, each read ${repeat} times per measurement`);

  const reads: Record<string, () => Promise<unknown>> = {
    whole: () => models.Invitation.find({ campaign: { $in: [String(target._id)] } }, { tokenGeneration: 1, revokedAt: 1, startedAt: 1, completedAt: 1 }).lean(),
    copy: () => readCampaignLinkEntries(models, target._id),
    marks: () => models.Completion.find({ campaign: target._id }, { _id: 1 }).lean(),
    suppressed: () => models.Suppression.find({}, { email: 1 }).lean(),
    pass: () => findDueMessages(deps, DEFAULT_POLICY),
  };
  const sample = (await models.Invitation.find({ campaign: target._id }, { _id: 1 }).limit(200).lean()).map((l) => l._id);
  /** CPU and wall time per look-up by _id, 200 in windows of 20. */
  const byId = async (ids: Types.ObjectId[], find: (id: Types.ObjectId) => Promise<unknown>) => {
    const [cpu, start] = [engineCpuMs(), performance.now()];
    for (let at = 0; at < ids.length; at += 20) await Promise.all(ids.slice(at, at + 20).map(find));
    return { cpu: (engineCpuMs() - cpu) / ids.length, wall: (performance.now() - start) / ids.length };
  };
  let earlier = 0;
  for (const history of histories) {
    for (; earlier < history; earlier++) {
      const old = await campaign(`Earlier ${earlier + 1}`);
      await createInvitations(linkDeps, old._id, contacts);
      const answered = await models.Invitation.find({ campaign: old._id }, { _id: 1 }).limit(completionCount).lean();
      await models.Completion.insertMany(answered.map((link) => ({ _id: link._id, campaign: old._id, at: new Date() })));
      await models.Campaign.updateOne({ _id: old._id }, { $set: { closedAt: new Date() } });
    }
    const [stored, marks] = await Promise.all([models.Invitation.estimatedDocumentCount(), models.Completion.estimatedDocumentCount()]);
    const figures = new Map<string, { cpu: number[]; wall: number[] }>(Object.keys(reads).map((name) => [name, { cpu: [], wall: [] }]));
    const loadBefore = loadAverage();
    for (let round = 0; round < rounds; round++) {
      // Alternated, and the order turned each round.
      const names = Object.keys(reads);
      for (const name of round % 2 ? names.reverse() : names) {
        const [cpu, start] = [engineCpuMs(), performance.now()];
        for (let r = 0; r < repeat; r++) await reads[name]!();
        figures.get(name)!.cpu.push((engineCpuMs() - cpu) / repeat);
        figures.get(name)!.wall.push((performance.now() - start) / repeat);
      }
    }
    const perLink = await byId(sample, (id) => models.Invitation.findById(id, { tokenGeneration: 1, revokedAt: 1 }).lean());
    const perMark = await byId(sample, (id) => models.Completion.findById(id, { _id: 1 }).lean());
    console.log(`\n${history} earlier campaigns (${stored} links, ${marks} completion marks stored); load average ${loadBefore} → ${loadAverage()}`);
    for (const [name, { cpu, wall }] of figures) {
      console.log(`  ${name.padEnd(10)} database CPU ${median(cpu).toFixed(1).padStart(6)} ms   wall ${median(wall).toFixed(0).padStart(6)} ms   (CPU by round: ${cpu.map((c) => c.toFixed(0)).join(' ')})`);
    }
    for (const [name, perId] of [['link', perLink], ['completion mark', perMark]] as const) {
      console.log(`  one ${name} by _id: database CPU ${perId.cpu.toFixed(2)} ms, wall ${perId.wall.toFixed(2)} ms (${sample.length} in windows of 20)`);
    }
  }
  await connection.close();
} finally {
  await engine.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
