/**
 * npm run bench:mail [-- --contacts 10000 --batch 50 --connections 5 --delay-ms 0]
 *
 * Invitations to N contacts through the durable outbox and a pooled SMTP
 * transport to a local SMTP sink (tests/helpers/smtp-sink.ts). Prints
 * messages per second, peak memory, and duplicates and losses, which must be 0.
 * The sink runs in a child process so that it does not share the sender's event loop.
 * The database is the embedded FerretDB (SQLite) in a temporary directory, or
 * MONGODB_URI when set. Then the same number of messages of the same size go
 * through a plain nodemailer pool (same connections, no outbox, no database) to
 * the same sink, and the ratio of the two rates is printed (target: ≥ 0.8).
 * --delay-ms makes the sink answer each message that much later.
 */
import { fork } from 'node:child_process';
import nodemailer from 'nodemailer';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { createMailTransport } from '../server/mail/mail-transport.ts';
import { DEFAULT_POLICY, findDueMessages, sendDueMessages } from '../server/mail/outbox-sender.service.ts';
import { countByState, outboxSignalToken, silentWorkers } from '../server/mail/outbox.service.ts';
import { startSmtpSink } from '../tests/helpers/smtp-sink.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '200' },
    connections: { type: 'string', default: '10' },
    role: { type: 'string' },
    'delay-ms': { type: 'string', default: '0' },
  },
});

// The SMTP sink runs in a child process, on a core of its own, as a real SMTP server would.
if (args.role === 'sink') {
  const sink = await startSmtpSink({ keepRaw: false, delayMs: Number(args['delay-ms']) });
  process.send!({ port: sink.port });
  process.on('message', async () => {
    const counts = Object.fromEntries(sink.countsByRecipient());
    process.send!({ counts }, () => process.exit(0));
  });
} else {
  await runBenchmark();
}

async function runBenchmark() {
const contactCount = Number(args.contacts);
const batchSize = Number(args.batch);
const connections = Number(args.connections);

let dataDir: string | undefined;
let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
let baseUri = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
if (!baseUri) {
  dataDir = mkdtempSync(join(tmpdir(), 'bench-mail-'));
  engine = await startEmbeddedEngine({ dataDir });
  baseUri = engine.uri;
}
const connection = await connect(`${baseUri}/bench_mail_${randomBytes(4).toString('hex')}`);
const models = defineModels(connection);
await ensureIndexes(models);
const sinkProcess = fork(fileURLToPath(import.meta.url), ['--role', 'sink', '--delay-ms', String(args['delay-ms'])], { execArgv: ['--import', 'tsx'] });
const sinkPort = await new Promise<number>((resolve) => sinkProcess.once('message', (m: { port: number }) => resolve(m.port)));
const transport = createMailTransport({ url: `smtp://127.0.0.1:${sinkPort}`, ratePerSecond: 10_000, maxConnections: connections });

try {
  console.log(`bench:mail  contacts=${contactCount} batch=${batchSize} connections=${connections} sink delay=${args['delay-ms']} ms database=${engine ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}`);
  const tokenKey = randomBytes(32);
  const now = () => new Date();
  const setupStart = performance.now();
  const campaign = await models.Campaign.create({
    name: 'Benchmark',
    strands: ['S1'],
    opensAt: new Date(Date.now() - 86_400_000),
    closesAt: new Date(Date.now() + 30 * 86_400_000),
  });
  const contacts = [];
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
  await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, campaign._id, contacts);
  const { added } = await enqueueInvitations({ models, now }, campaign._id, 'bench');
  console.log(`set-up: ${contactCount} contacts, ${added} invitations queued in ${((performance.now() - setupStart) / 1000).toFixed(1)} s\n`);

  const deps = { models, transport, tokenKey, publicUrl: 'http://survey.test', from: 'Survey <survey@bench.test>', now, workerId: 'bench' };
  const policy = { ...DEFAULT_POLICY, batchSize };
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const start = performance.now();
  let sent = 0;
  let lastReport = start;
  for (;;) {
    const outcomes = await sendDueMessages(deps, policy);
    if (outcomes.length === 0) break;
    sent += outcomes.filter((o) => o === 'sent').length;
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now();
      console.log(`  ${sent} sent, ${(sent / ((lastReport - start) / 1000)).toFixed(0)} msg/s`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);

  // The same number of messages of the same size through a plain pool to the same sink: the ceiling.
  // About the size of an invitation: a text part and an HTML part of some 1.5 KB each.
  const sample = { subject: 'Invitation to the VET staff mobility survey', text: 'x'.repeat(1500), html: `<p>${'x'.repeat(1500)}</p>` };
  const plain = nodemailer.createTransport({ host: '127.0.0.1', port: sinkPort, secure: false, ignoreTLS: true, pool: true, maxConnections: connections, maxMessages: Infinity });
  const plainStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections * 4 }, async () => {
      while (next < sent) {
        const i = next++;
        await plain.sendMail({ from: 'Survey <survey@bench.test>', to: `plain${i}@plain.example`, ...sample });
      }
    }),
  );
  const plainSeconds = (performance.now() - plainStart) / 1000;
  plain.close();

  sinkProcess.send('report');
  const received = new Map(Object.entries(await new Promise<Record<string, number>>((resolve) => sinkProcess.once('message', (m: { counts: Record<string, number> }) => resolve(m.counts)))));
  const duplicates = [...received.values()].filter((n) => n > 1).length;
  const losses = contacts.filter((c) => !received.has(c.email)).length;
  for (const key of received.keys()) if (key.endsWith('@plain.example')) received.delete(key);
  const counts = await countByState({ models }, { campaign: campaign._id });
  console.log(`\nmessages sent      ${sent} in ${seconds.toFixed(1)} s`);
  console.log(`throughput         ${(sent / seconds).toFixed(0)} messages/s`);
  console.log(`plain pool         ${(sent / plainSeconds).toFixed(0)} messages/s (same sink, connections and message size, no outbox)`);
  console.log(`ratio              ${(plainSeconds / seconds).toFixed(2)} of the plain pool (target ≥ 0.8)`);
  console.log(`peak RSS           ${(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1048576).toFixed(0)} MB (the sender's process; the sink runs in another)`);
  console.log(`outbox states      ${JSON.stringify(counts)}`);
  console.log(`duplicates         ${duplicates}`);
  // What an idle sender costs once everything is sent: the full read it does when the outbox
  // signal changed (and on its first pass), against the check it does every idle poll.
  const fullStart = performance.now();
  await findDueMessages(deps, policy, { everyClaim: true });
  const fullMs = performance.now() - fullStart;
  const idleStart = performance.now();
  await Promise.all([outboxSignalToken({ models }), silentWorkers({ models, now }, policy.leaseMs)]);
  console.log(`idle sender        a full read of the outbox ${fullMs.toFixed(0)} ms; the idle check (signal + heartbeats) ${(performance.now() - idleStart).toFixed(1)} ms`);
  console.log(`losses             ${losses}`);
  if (duplicates > 0 || losses > 0) process.exitCode = 1;
} finally {
  transport.close();
  sinkProcess.kill();
  await connection.dropDatabase();
  await connection.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
}
