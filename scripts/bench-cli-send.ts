/**
 * npm run bench:cli-send [-- --contacts 3000 --history 1 --delay-ms 0 --tool built|tsx]
 *
 * `--tool built` (the default) starts the tool as `npm run cli` does
 * (scripts/run-built.mjs: JavaScript built from the sources, node_modules
 * loaded without loader hooks); `--tool tsx` as it was started before
 * (`node --import tsx scripts/cli.ts`), to compare.
 *
 * How long `npm run cli -- campaign:send` takes around the sending itself:
 * from the command's start to the first message at the relay, the sending,
 * and from the last message at the relay to the command's exit. The real
 * tool runs as its own process on the embedded database of a temporary data
 * directory, as a coordinator runs it with the platform stopped, sending to
 * an SMTP sink in another process. `--history n` first sends n earlier
 * campaigns to the same contacts (closed since), so that the outbox holds
 * what a platform in use holds.
 *
 * Then the platform (server/index.ts, as its own process) is started on that
 * data directory twice and stopped with SIGTERM: once as soon as it is ready
 * (its sender's first pass, which reads the history, is under way) and once
 * after --idle-seconds of idling; the time from the signal to the exit is printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { parseConfig } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { enqueueInvitations } from '../server/mail/invitation-mail.service.ts';
import { createMailTransport } from '../server/mail/mail-transport.ts';
import { DEFAULT_POLICY, sendDueMessages } from '../server/mail/outbox-sender.service.ts';
import { startSinkProcess } from './smtp-sink-process.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { loadAverage } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    contacts: { type: 'string', default: '3000' },
    history: { type: 'string', default: '1' },
    'delay-ms': { type: 'string', default: '0' },
    'idle-seconds': { type: 'string', default: '10' },
    tool: { type: 'string', default: 'built' },
  },
});
const contactCount = Number(args.contacts);
const history = Number(args.history);

const dataDir = mkdtempSync(join(tmpdir(), 'bench-cli-send-'));
const tokenKey = randomBytes(32);
const sink = await startSinkProcess(Number(args['delay-ms']));
try {
  const setupStart = performance.now();
  const config = parseConfig({ DATA_DIR: dataDir });
  const database = await openDatabase(config);
  const models = defineModels(database.connection);
  await ensureIndexes(models);
  const now = () => new Date();
  const contacts: Array<{ _id: Types.ObjectId; institution: Types.ObjectId; email: string }> = [];
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
  const campaign = (name: string) =>
    models.Campaign.create({ name, strands: ['S1'], opensAt: new Date(Date.now() - 86_400_000), closesAt: new Date(Date.now() + 30 * 86_400_000) });
  // Earlier campaigns, sent and closed: the history the outbox keeps.
  const transport = createMailTransport({ url: sink.url, ratePerSecond: 10_000, maxConnections: 5 });
  for (let h = 1; h <= history; h++) {
    const earlier = await campaign(`Earlier ${h}`);
    await createInvitations({ models, tokenKey, publicUrl: 'http://survey.test' }, earlier._id, contacts);
    await enqueueInvitations({ models, now }, earlier._id, 'bench');
    const deps = { models, transport, tokenKey, publicUrl: 'http://survey.test', from: 'Survey <survey@bench.test>', now, workerId: 'history' };
    while ((await sendDueMessages(deps, { ...DEFAULT_POLICY, batchSize: 50 })).length > 0);
    await models.Campaign.updateOne({ _id: earlier._id }, { $set: { closedAt: new Date() } });
  }
  transport.close();
  const target = await campaign('Benchmark');
  await database.close();
  console.log(`set-up: ${contactCount} contacts, ${history} earlier campaigns sent (${history * contactCount} messages in the outbox) in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);
  await sink.mark();
  console.log(`load average before the tool   ${loadAverage(1)}`);

  // Built beforehand, as after `npm install` or any earlier run: a run after an edit adds the build (about a second).
  if (args.tool !== 'tsx') spawnSync(process.execPath, ['scripts/run-built.mjs', '--build', 'scripts/cli.ts'], { stdio: 'inherit' });
  const startedAt = Date.now();
  const lines: string[] = [];
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MONGODB_URI;
  const tool = args.tool === 'tsx' ? ['--import', 'tsx', 'scripts/cli.ts'] : ['scripts/run-built.mjs', 'scripts/cli.ts'];
  console.log(`the tool                        node ${tool.join(' ')}`);
  const child = spawn(process.execPath, [...tool, 'campaign:send', '--campaign', String(target._id)], {
    env: {
      ...env,
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      TOKEN_KEY: tokenKey.toString('hex'),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      PUBLIC_URL: 'https://survey.test',
      SMTP_URL: sink.url,
      SEND_RATE_PER_SECOND: '10000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(`${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s  ${line.trim()}`);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  // The tool's CPU, read from /proc while it runs (its last reading before the exit): the machine is shared.
  let toolCpuSeconds = 0;
  const cpuWatch = setInterval(() => (toolCpuSeconds = processCpuSeconds(child.pid) ?? toolCpuSeconds), 250);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(cpuWatch);
  const exitedAt = Date.now();
  const report = await sink.report();
  const received = contacts.filter((c) => (report.counts[c.email] ?? 0) === history + 1).length;
  console.log(lines.join('\n'));
  const first = report.firstAt;
  console.log(`\nexit code                       ${code}`);
  if (first && report.lastAt) {
    console.log(`start → first message at relay  ${((first - startedAt) / 1000).toFixed(1)} s`);
    console.log(`first → last message            ${((report.lastAt - first) / 1000).toFixed(1)} s (${(received / Math.max(0.001, (report.lastAt - first) / 1000)).toFixed(0)} msg/s)`);
    console.log(`last message → exit             ${((exitedAt - report.lastAt) / 1000).toFixed(1)} s`);
  }
  console.log(`contacts with one new message   ${received} of ${contactCount}`);
  console.log(`CPU of the tool                 ${toolCpuSeconds.toFixed(1)} s (the database engine apart); load average ${loadAverage(1)}`);
  if (received !== contactCount || code !== 0) process.exitCode = 1;

  console.log(`\nstopping the platform (SIGTERM to server/index.ts), load average ${loadAverage(1)}`);
  for (const idleMs of [0, Number(args['idle-seconds']) * 1000]) {
    const server = spawn(process.execPath, ['scripts/run-built.mjs', 'server/index.ts'], {
      env: { ...env, NODE_ENV: 'development', LOG_FORMAT: 'json', NO_DEMO: '1', PORT: '0', DATA_DIR: dataDir, TOKEN_KEY: tokenKey.toString('hex'), SESSION_SECRET: randomBytes(32).toString('hex'), PUBLIC_URL: 'https://survey.test', SMTP_URL: sink.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      server.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('The platform is running')) resolve();
      });
      server.once('exit', () => reject(new Error(`the platform exited before it was ready:\n${seen}`)));
    });
    const readyMs = Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const signalled = Date.now();
    server.kill('SIGTERM');
    await exited;
    console.log(`  ${idleMs === 0 ? 'as soon as it is ready' : `after ${idleMs / 1000} s idle`}`.padEnd(32) + `stop ${((Date.now() - signalled) / 1000).toFixed(1)} s (ready ${(readyMs / 1000).toFixed(1)} s after start; load average ${loadavg()[0]!.toFixed(1)})`);
  }
} finally {
  sink.stop();
  rmSync(dataDir, { recursive: true, force: true });
}


