/**
 * npm run bench:mail [-- --contacts 3000 --rounds 3 --connections 5 --batch <window> --delay-ms 0 --suppressions 0 --profile]
 *
 * Each run sends one campaign's invitations to N contacts through the durable
 * outbox and a pooled SMTP transport (the platform's sender, from the read of
 * what is due to the last outcome recorded), and the same number of messages
 * through a plain nodemailer pool (the platform's message as composed for a
 * contact, to another address each time; the same connections and messages
 * per connection; no outbox, no database), to the same SMTP sink (tests/helpers/smtp-sink.ts),
 * which runs in a child process as a real relay would. The arms are
 * interleaved for --rounds rounds (--runs is the same), each round's two arms
 * side by side and the order alternating (platform, plain, plain, platform,
 * …), so that a machine that gets busier or quieter favours neither: on two
 * shared cores one arm's rate swings by a factor of three from minute to
 * minute. Prints both rates and their ratio per round and the median ratio
 * (target ≥ 0.8), and the CPU seconds per 1,000 messages of each arm's
 * processes (the sender's, and the database's, which only the platform
 * uses; the sink's apart), which vary far less with the load than rates do;
 * the platform's round trips per message, peak memory, and duplicates and
 * losses, which must be 0; at the end, what a page's read of the last
 * campaign's messages with their claims and outcomes costs. The platform's rate
 * limit is lifted here (SEND_RATE_PER_SECOND caps the platform, 50 by default).
 * The database is the embedded FerretDB (SQLite) in a temporary directory, or
 * MONGODB_URI when set. --delay-ms makes the sink answer each message's data
 * that much later, like a relay that scans or queues slowly. --suppressions
 * puts that many other addresses on the suppression list (refused by a relay
 * before), which the sender looks its messages up in. The platform has
 * started once before the runs, and follows the contact list from then on as
 * the platform's process does (server/index.ts, followContactList), so its
 * first round finds the list kept; --cold: it does not, as the command-line
 * tool's first pass, which reads the list while its first window goes out.
 * A database's one-time build of the due view is
 * measured on its own at the end, not in the first run. --profile takes a CPU
 * profile of this process (the sender's) over each arm's measured time, prints
 * the shares of its busy time by part (scripts/cpu-profile-summary.ts) and keeps the
 * .cpuprofile files (for Chrome's DevTools) in a temporary directory.
 */
import nodemailer from 'nodemailer';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { followContactList, type ContactListFollower } from '../server/campaigns/audience-state.ts';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations, personalLink } from '../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { createMailTransport } from '../server/mail/mail-transport.ts';
import { composeMessage } from '../server/mail/mail-message.ts';
import { DEFAULT_POLICY, findDueMessages, messageIdFor, sendingWindows, sendMessages } from '../server/mail/outbox-sender.service.ts';
import { unsubscribeLink } from '../server/mail/unsubscribe-token.ts';
import { countByState, intentsToRepair, messageStatuses, outboxSignalToken, silentWorkers } from '../server/mail/outbox.service.ts';
import { summarizeProfile } from './cpu-profile-summary.ts';
import { startSinkProcess } from './smtp-sink-process.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { loadAverage, median } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '3000' },
    batch: { type: 'string' },
    connections: { type: 'string', default: '5' },
    runs: { type: 'string' },
    rounds: { type: 'string' },
    'delay-ms': { type: 'string', default: '0' },
    suppressions: { type: 'string', default: '0' },
    profile: { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
  },
});

await runBenchmark();

async function runBenchmark() {
const contactCount = Number(args.contacts);
const connections = Number(args.connections);
// The platform's windows for that many connections (as server/index.ts sets them) unless --batch says otherwise (one window for all three).
const windows = args.batch ? { batchSize: Number(args.batch), relayWindow: Number(args.batch), outcomeBatch: Number(args.batch) } : sendingWindows(connections);
const { batchSize } = windows;
const bound = windows.batchSize + windows.relayWindow + windows.outcomeBatch;
const runs = Number(args.rounds ?? args.runs ?? 3);

let dataDir: string | undefined;
let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
let baseUri = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
if (!baseUri) {
  dataDir = mkdtempSync(join(tmpdir(), 'bench-mail-'));
  engine = await startEmbeddedEngine({ dataDir });
  baseUri = engine.uri;
}
const connection = await connect(`${baseUri}/bench_mail_${randomBytes(4).toString('hex')}`, { monitorCommands: true });
/** The database round trips of the platform's run, by command and collection: how many, how many documents, how long in all (wall). */
const roundTrips = new Map<string, { count: number; docs: number; ms: number }>();
const started = new Map<number, { key: string; docs: number }>();
const client = connection.getClient();
client.on('commandStarted', (event) => {
  const command = event.command as Record<string, unknown>;
  const docs = (command.documents ?? command.deletes ?? command.updates) as unknown[] | undefined;
  // A getMore names its cursor; its collection says more.
  const target = event.commandName === 'getMore' ? command.collection : command[event.commandName];
  started.set(event.requestId, { key: `${event.commandName} ${String(target ?? '')}`, docs: docs?.length ?? 0 });
});
const ended = (event: { requestId: number; duration: number }) => {
  const start = started.get(event.requestId);
  if (!start) return;
  started.delete(event.requestId);
  const tally = roundTrips.get(start.key) ?? { count: 0, docs: 0, ms: 0 };
  tally.count += 1;
  tally.docs += start.docs;
  tally.ms += event.duration;
  roundTrips.set(start.key, tally);
};
client.on('commandSucceeded', ended);
client.on('commandFailed', ended);
const models = defineModels(connection);
await ensureIndexes(models);
// The SMTP sink runs in a child process, on a core of its own, as a real SMTP server would.
const sinkProcess = await startSinkProcess(Number(args['delay-ms']));
const sinkPort = sinkProcess.port;
const transport = createMailTransport({ url: `smtp://127.0.0.1:${sinkPort}`, ratePerSecond: 10_000, maxConnections: connections });
let contactList: ContactListFollower | undefined;

try {
  console.log(`bench:mail  contacts=${contactCount} suppressions=${args.suppressions} rounds=${runs} batch=${batchSize} connections=${connections} sink delay=${args['delay-ms']} ms database=${engine ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}`);
  const tokenKey = randomBytes(32);
  const now = () => new Date();
  const setupStart = performance.now();
  const contacts: Array<{ _id: Types.ObjectId; institution: Types.ObjectId; name: string; email: string; language: string }> = [];
  for (let start = 0; start < contactCount; start += 2000) {
    const size = Math.min(2000, contactCount - start);
    const institutions = await models.Institution.insertMany(
      Array.from({ length: size }, (_, i) => ({ name: `School ${start + i}`, country: 'DE', type: 'ivet_school', key: institutionKey({ name: `School ${start + i}`, country: 'DE' }) })),
      { lean: true },
    );
    const batch = institutions.map((institution, i) => ({ _id: new Types.ObjectId(), institution: institution._id, name: `Leader ${start + i}`, email: `c${start + i}@bench.example`, language: 'en' }));
    await models.Contact.insertMany(batch, { lean: true });
    contacts.push(...batch);
  }
  await models.Suppression.insertMany(
    Array.from({ length: Number(args.suppressions) }, (_, i) => ({ email: `gone${i}@elsewhere.example`, reason: '550 5.1.1 <gone@elsewhere.example>: Recipient address rejected: User unknown in virtual mailbox table', at: now(), campaign: new Types.ObjectId() })),
    { lean: true },
  );
  // The platform's process reads the contact list at start and follows its changes (server/index.ts); --cold, as the command-line tool, does not.
  contactList = args.cold ? undefined : followContactList(models);
  await contactList?.ready();
  console.log(`set-up: ${contactCount} contacts, ${args.suppressions} addresses suppressed, in ${((performance.now() - setupStart) / 1000).toFixed(1)} s; ${contactList ? 'the contact list followed as the platform does' : 'the contact list not read before the first round (--cold: the command-line tool)'}\n`);

  const deps = { models, transport, tokenKey, publicUrl: 'http://survey.test', from: 'Survey <survey@bench.test>', now, workerId: 'bench' };
  const policy = { ...DEFAULT_POLICY, ...windows };
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  // The pool's settings are the platform transport's (connections, messages per connection), without its rate limit and stream step.
  const plain = nodemailer.createTransport({ host: '127.0.0.1', port: sinkPort, secure: false, ignoreTLS: true, pool: true, maxConnections: connections, maxMessages: 1000 });
  // The message the platform sends, as composed for a contact (the same text, HTML and headers),
  // to another address each time: the plain pool sends what the platform sends, nothing more or less.
  const sample = composeMessage({
    // The campaigns' default texts, as the platform's runs use.
    campaign: { name: 'Benchmark 1', closesAt: new Date(Date.now() + 30 * 86_400_000) } as Parameters<typeof composeMessage>[0]['campaign'],
    kind: 'invitation',
    language: 'en',
    from: deps.from,
    to: 'c0@bench.example',
    messageId: messageIdFor(contacts[0]!._id, deps.from),
    privacyLink: `${deps.publicUrl}/privacy/${contacts[0]!._id}?lang=en`,
    values: {
      contactName: contacts[0]!.name,
      institutionName: 'School 0',
      link: personalLink(deps, { _id: contacts[0]!._id }),
      unsubscribeLink: unsubscribeLink(deps, String(contacts[0]!._id)),
      started: false,
    },
  });

  /** CPU seconds used so far by this process, the database engine and the sink (from /proc: the load makes wall times unreliable). */
  const cpu = () => ({ sender: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6, engine: (engine && processCpuSeconds(engine.pid)) || 0, sink: processCpuSeconds(sinkProcess.pid) ?? 0 });
  type Cpu = ReturnType<typeof cpu>;
  const cpuUsedSince = (before: Cpu): Cpu => {
    const after = cpu();
    return { sender: after.sender - before.sender, engine: after.engine - before.engine, sink: after.sink - before.sink };
  };
  const cpuText = (used: Cpu) => `cpu: sender ${used.sender.toFixed(1)} s, database ${used.engine.toFixed(1)} s, sink ${used.sink.toFixed(1)} s`;
  const cpuSince = (before: Cpu) => cpuText(cpuUsedSince(before));
  /** CPU seconds per 1,000 messages of an arm's processes: the sender's and the database's (the sink's is the same work for both arms). */
  const perThousand = (used: Cpu, messages: number) => ({ sender: (used.sender * 1000) / messages, engine: (used.engine * 1000) / messages, sink: (used.sink * 1000) / messages });

  /** With --profile, the inspector's CPU profiler of this process, started and stopped around each arm's measured time. */
  const profiler = args.profile ? new Session() : undefined;
  const profileDir = profiler ? mkdtempSync(join(tmpdir(), 'bench-mail-profile-')) : undefined;
  profiler?.connect();
  await profiler?.post('Profiler.enable');
  const startProfile = async () => void (await profiler?.post('Profiler.start'));
  /** Stops the profile, keeps it as <name>.cpuprofile and says where its CPU went. */
  const stopProfile = async (name: string) => {
    if (!profiler) return '';
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(join(profileDir!, `${name}.cpuprofile`), JSON.stringify(profile));
    return summarizeProfile(profile);
  };

  /** One campaign's invitations to every contact through the outbox: the time until the last outcome is recorded. */
  async function platformRun(run: number) {
    const campaign = await models.Campaign.create({
      name: `Benchmark ${run}`,
      strands: ['S1'],
      opensAt: new Date(Date.now() - 86_400_000),
      closesAt: new Date(Date.now() + 30 * 86_400_000),
    });
    await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, campaign._id, contacts);
    await enqueueInvitations({ models, now }, campaign._id, 'bench');
    await startProfile();
    const start = performance.now();
    const cpuAtStart = cpu();
    roundTrips.clear();
    let sent = 0;
    let readMs = 0;
    let readDatabaseCpu = 0;
    let lastOutcomeAt = start;
    /** When the relay's first answer came: the reads before the first message, and the first window's claim and sending. */
    let firstOutcomeAt: number | undefined;
    const onOutcome = () => void (firstOutcomeAt ??= performance.now());
    // One pass sends everything due; the loop ends with a pass that finds nothing (the platform's
    // background sender does not make that pass: it idles after a pass whose outcomes are all final).
    for (;;) {
      const readStart = performance.now();
      const readCpu = cpu().engine;
      const { due, context } = await findDueMessages(deps, policy);
      if (due.length === 0) break;
      readMs += performance.now() - readStart;
      readDatabaseCpu += cpu().engine - readCpu;
      const outcomes = await sendMessages(deps, policy, due, context!, { onOutcome });
      sent += outcomes.filter((o) => o === 'sent').length;
      lastOutcomeAt = performance.now();
    }
    const cpuUsed = cpuUsedSince(cpuAtStart);
    const profile = await stopProfile(`platform-${run}`);
    // Closed, as a campaign whose sending is over would be some day; its history stays in the outbox.
    await models.Campaign.updateOne({ _id: campaign._id }, { $set: { closedAt: new Date() } });
    const trips = [...roundTrips].sort(([, a], [, b]) => b.ms - a.ms);
    return { campaign, sent, readMs, readDatabaseCpu, cpuUsed, profile, trips, seconds: (lastOutcomeAt - start) / 1000, firstMs: (firstOutcomeAt ?? lastOutcomeAt) - start, emptyPassMs: performance.now() - lastOutcomeAt };
  }

  /** The same number of messages of the same size through a plain pool to the same sink: the ceiling. */
  async function plainRun(count: number, run: number) {
    await startProfile();
    const start = performance.now();
    const cpuAtStart = cpu();
    let next = 0;
    await Promise.all(
      Array.from({ length: connections * 4 }, async () => {
        while (next < count) {
          const i = next++;
          const to = `plain${run}-${i}@plain.example`;
          await plain.sendMail({ ...sample, to, messageId: `<plain${run}-${i}@bench.test>` });
        }
      }),
    );
    plainCpu = cpuUsedSince(cpuAtStart);
    const seconds = (performance.now() - start) / 1000;
    plainProfile = await stopProfile(`plain-${run}`);
    return seconds;
  }
  let plainCpu: Cpu = { sender: 0, engine: 0, sink: 0 };
  let plainProfile = '';

  // A database's first start on this version builds the due view and reads every claim, once in
  // its life (measured on its own below): the platform is started once before the runs, so that
  // the first run measures sending, as the others do, and not that one-time build.
  await findDueMessages(deps, policy);

  const ratios: number[] = [];
  const platformCpus: Array<ReturnType<typeof perThousand>> = [];
  const plainCpus: Array<ReturnType<typeof perThousand>> = [];
  const tripsPerMessage: number[] = [];
  const campaigns: Types.ObjectId[] = [];
  let sentInAll = 0;
  for (let run = 1; run <= runs; run++) {
    // The order alternates, so that a machine that gets busier or quieter favours neither.
    let platform: Awaited<ReturnType<typeof platformRun>>;
    let plainSeconds: number;
    let plainCount: number;
    if (run % 2 === 1) {
      platform = await platformRun(run);
      plainCount = platform.sent;
      plainSeconds = await plainRun(plainCount, run);
    } else {
      plainCount = contactCount;
      plainSeconds = await plainRun(plainCount, run);
      platform = await platformRun(run);
    }
    campaigns.push(platform.campaign._id);
    sentInAll += platform.sent;
    const platformRate = platform.sent / platform.seconds;
    const plainRate = plainCount / plainSeconds;
    const platformCpu = perThousand(platform.cpuUsed, platform.sent);
    const plainPoolCpu = perThousand(plainCpu, plainCount);
    platformCpus.push(platformCpu);
    plainCpus.push(plainPoolCpu);
    ratios.push(platformRate / plainRate);
    console.log(
      `round ${run} (${run % 2 === 1 ? 'platform, then plain' : 'plain, then platform'}): platform ${platform.sent} sent in ${platform.seconds.toFixed(1)} s = ${platformRate.toFixed(0)} msg/s · plain pool ${plainRate.toFixed(0)} msg/s · ratio ${(platformRate / plainRate).toFixed(2)}` +
        ` (the first outcome after ${(platform.firstMs / 1000).toFixed(2)} s; reading what is due ${(platform.readMs / 1000).toFixed(1)} s of it, ${platform.readDatabaseCpu.toFixed(1)} s of database cpu; then a pass finding nothing ${(platform.emptyPassMs / 1000).toFixed(1)} s)`,
    );
    console.log(`       platform ${cpuText(platform.cpuUsed)} · plain pool ${cpuText(plainCpu)} · load average ${loadAverage(1)}`);
    console.log(
      `       cpu per 1,000 messages: platform ${(platformCpu.sender + platformCpu.engine).toFixed(2)} s (sender ${platformCpu.sender.toFixed(2)} s + database ${platformCpu.engine.toFixed(2)} s)` +
        ` · plain pool ${(plainPoolCpu.sender + plainPoolCpu.engine).toFixed(2)} s (sender ${plainPoolCpu.sender.toFixed(2)} s + database ${plainPoolCpu.engine.toFixed(2)} s) · sink ${platformCpu.sink.toFixed(2)} s and ${plainPoolCpu.sink.toFixed(2)} s`,
    );
    if (profiler) console.log(`       sender's busy time by part: platform ${platform.profile}\n                                   plain pool ${plainProfile}`);
    // Round trips overlap (the claims, the sending and the writing run side by side): the times add up to more than the run.
    // Little's law: at most the bound (a window of claims, the relay's window, a batch of outcomes) are without an
    // outcome (the bound on unknowns after a kill), and each stays so at least for its claim's and
    // its outcome's round trips.
    const mean = (key: string) => {
      const t = platform.trips.find(([k]) => k === key)?.[1];
      return t ? t.ms / t.count : 0;
    };
    const heldMs = mean('insert outbox_claims') + mean('insert outbox_outcomes');
    console.log(
      `       mean round trip: claim ${mean('insert outbox_claims').toFixed(1)} ms, outcomes ${mean('insert outbox_outcomes').toFixed(1)} ms: the bound of ${bound} claims without an outcome allows at most ${((bound * 1000) / heldMs).toFixed(0)} msg/s`,
    );
    const tripCount = platform.trips.reduce((n, [, t]) => n + t.count, 0);
    tripsPerMessage.push(tripCount / platform.sent);
    console.log(
      `       round trips (${tripCount}, ${(tripCount / platform.sent).toFixed(2)} a message): ${platform.trips
        .slice(0, 12)
        .map(([key, t]) => `${key} ×${t.count}${t.docs ? ` (${t.docs} docs)` : ''} ${(t.ms / 1000).toFixed(1)} s`)
        .join(' · ')}`,
    );
  }
  clearInterval(sampler);
  plain.close();

  const received = new Map(Object.entries((await sinkProcess.report()).counts));
  for (const key of received.keys()) if (key.endsWith('@plain.example')) received.delete(key);
  // Each run mails every contact once: a contact received `runs` messages, no more, no less.
  const duplicates = [...received.values()].filter((n) => n > runs).length;
  const losses = contacts.filter((c) => (received.get(c.email) ?? 0) < runs).length;
  console.log(`\nratio              ${ratios.map((r) => r.toFixed(2)).join(' ')} of the plain pool by round (median ${median(ratios).toFixed(2)}; target ≥ 0.8)`);
  const platformTotal = median(platformCpus.map((c) => c.sender + c.engine));
  const plainTotal = median(plainCpus.map((c) => c.sender + c.engine));
  console.log(
    `cpu per 1,000      platform ${platformTotal.toFixed(2)} s (sender ${median(platformCpus.map((c) => c.sender)).toFixed(2)} s, database ${median(platformCpus.map((c) => c.engine)).toFixed(2)} s)` +
      ` · plain pool ${plainTotal.toFixed(2)} s (sender ${median(plainCpus.map((c) => c.sender)).toFixed(2)} s, database ${median(plainCpus.map((c) => c.engine)).toFixed(2)} s)` +
      ` · plain pool ÷ platform ${(plainTotal / platformTotal).toFixed(2)} (medians of the rounds)`,
  );
  console.log(`round trips        ${median(tripsPerMessage).toFixed(3)} a message (median of the rounds)`);
  console.log(`messages sent      ${sentInAll} in ${runs} rounds`);
  console.log(`peak RSS           ${(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1048576).toFixed(0)} MB (the sender's process; the sink runs in another)`);
  console.log(`outbox states      ${JSON.stringify(await countByState({ models }, { campaign: campaigns.at(-1)! }))} (last run)`);
  console.log(`duplicates         ${duplicates}`);
  // What a sender's start costs once everything is sent, with the last campaign open again: a
  // start (the due view, the intents, the heartbeats), against the full read of the outbox, its
  // claims and outcomes that every start did before intents and that now only a database's first
  // start on this version does, and against the check an idle sender does every poll.
  await models.Campaign.updateOne({ _id: campaigns.at(-1) }, { $unset: { closedAt: 1 } });
  const timed = async (work: () => Promise<unknown>) => {
    const [before, started] = [cpu(), performance.now()];
    await work();
    return `${(performance.now() - started).toFixed(0)} ms (${cpuSince(before)})`;
  };
  const start = await timed(() => findDueMessages(deps, policy));
  await models.OutboxSignal.deleteOne({ _id: 'due-view-complete' });
  const firstStart = await timed(() => findDueMessages(deps, policy));
  const idle = await timed(() => Promise.all([outboxSignalToken({ models }), silentWorkers({ models, now }, policy.leaseMs), intentsToRepair({ models, now })]));
  // What the pages that follow the sending read of the outcomes (the fieldwork view, the reminders' dry run): the last campaign's.
  const pageRead = await timed(() => messageStatuses({ models }, { campaign: campaigns.at(-1)!, kind: 'invitation' }));
  console.log(`page's read        the last campaign's ${contactCount} messages with their claims and outcomes (messageStatuses) ${pageRead}`);
  console.log(`sender start       ${start}; the first start on this version, a full read of the outbox (every start before intents) ${firstStart}`);
  console.log(`idle check         (signal + heartbeats + intents) ${idle} · load average ${loadAverage(1)}`);
  console.log(`losses             ${losses}`);
  if (profileDir) console.log(`cpu profiles       ${profileDir} (platform-<run>.cpuprofile, plain-<run>.cpuprofile)`);
  profiler?.disconnect();
  if (duplicates > 0 || losses > 0) process.exitCode = 1;
} finally {
  await contactList?.stop();
  transport.close();
  sinkProcess.stop();
  await connection.dropDatabase();
  await connection.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
}

