/**
 * npm run bench:submit [-- --respondents 400 --concurrency 32]
 * npm run bench:submit -- --stored 1000,10000,50000 [--respondents 200]
 * npm run bench:submit -- --records [--respondents 400]
 *
 * With --records, the same validated submissions with the analytic record
 * (and its journal entry) written, and with that write skipped: prints the
 * throughput ratio, the cost of keeping the evidence's records.
 *
 * With --stored, each run first fills the database up to that many stored
 * responses (invitations, revisions and current responses of another
 * campaign, with their analytic records and journal entries), then times
 * submissions with full validation: look-ups and
 * updates by _id must not slow down as the data grows (the embedded engine's
 * launcher indexes the expression FerretDB queries). Prints p50/p95 per size
 * and the ratio of the largest to the smallest.
 *
 * N respondents submit complete, valid questionnaires concurrently. Prints
 * throughput and latency percentiles for submission with full validation,
 * beside the same server storing the same payload without validation; the
 * ratio is the cost of validation. The server runs in a child process so the
 * load generator does not share its event loop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { completeAnswers } from '../tests/fixtures/complete-answers.ts';
import { createApp } from '../server/app.ts';
import { connect } from '../server/db/connection.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { changingLinks, createInvitations, personalLink } from '../server/invitations/invitation.service.ts';
import { csrfToken } from '../server/shared/csrf.ts';
import { appendJournal, taggedRecordOf } from '../server/evidence/analytic-record.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { institutionTagger } from '../server/evidence/institution-tag.ts';
import { loadAverage } from './bench-figures.ts';

const { values: args } = parseArgs({
  options: {
    respondents: { type: 'string', default: '400' },
    concurrency: { type: 'string', default: '32' },
    role: { type: 'string' },
    mode: { type: 'string' },
    uri: { type: 'string' },
    stored: { type: 'string' },
    records: { type: 'boolean', default: false },
  },
});

type Mode = 'plain' | 'validated' | 'no-records';

if (args.role === 'server') await runServer((args.mode ?? 'validated') as Mode, args.uri!);
else if (args.records) await runRecords(Number(args.respondents), Number(args.concurrency));
else if (args.stored) await runGrowth(args.stored.split(',').map(Number), Number(args.respondents), Number(args.concurrency));
else await runBenchmark(Number(args.respondents), Number(args.concurrency));

interface Prepared {
  port: number;
  links: Array<{ path: string; csrf: string }>;
}

/** Child process: the platform on a fresh database, with N invitations ready. */
async function runServer(mode: Mode, uri: string) {
  const connection = await connect(uri);
  const models = defineModels(connection);
  await ensureIndexes(models);
  const registry = new QuestionnaireRegistry();
  if (mode === 'plain') {
    // Same storage path, validation replaced by the answers' precomputed result.
    const questionnaire = registry.forStrands(['S1', 'S2', 'S3', 'S4']);
    const precomputed = questionnaire.validator.validate(completeAnswers(), 'en');
    if (!precomputed.ok) throw new Error(`fixture is not valid: ${JSON.stringify(precomputed.errors)}`);
    questionnaire.validator.validate = () => precomputed;
  }
  if (mode === 'no-records') {
    // The record write skipped: its insert answers "duplicate" and its look-up "a later revision is stored", so nothing is written or journalled.
    const stored = { p: '{}', a: '{}', campaign: new Types.ObjectId(), institution: '', at: new Date(), revision: Number.MAX_SAFE_INTEGER };
    models.AnalyticRecord.collection.insertOne = (async () => {
      throw Object.assign(new Error('skipped by the benchmark'), { code: 11000 });
    }) as never;
    (models.AnalyticRecord as unknown as { findById: unknown }).findById = (id: unknown) => ({ lean: async () => ({ ...stored, _id: id }) });
  }
  const tokenKey = randomBytes(32);
  const tagKey = randomBytes(32);
  const sessionSecret = randomBytes(32).toString('base64url');
  const app = createApp({
    models,
    questionnaires: registry,
    secrets: { tokenKey, sessionSecret, tagKey },
    now: () => new Date(),
    options: { bodyLimit: 256 * 1024, tokenRateLimit: 1_000_000, cacheViews: true },
  });

  const count = Number(process.env.BENCH_RESPONDENTS);
  const campaign = await models.Campaign.create({
    name: 'Benchmark',
    strands: ['S1', 'S2', 'S3', 'S4'],
    opensAt: new Date(Date.now() - 86_400_000),
    closesAt: new Date(Date.now() + 86_400_000),
  });
  // A run of its own in a database that earlier runs may have filled (--stored).
  const run = randomBytes(4).toString('hex');
  const institution = await models.Institution.create({ name: `Bench school ${run}`, country: 'DE', type: 'ivet_school', key: `bench-${run}` });
  const contacts = Array.from({ length: count }, (_, i) => ({
    _id: new Types.ObjectId(),
    institution: institution._id,
    name: `Respondent ${i}`,
    email: `r${i}.${run}@bench.example`,
    language: 'en',
  }));
  await models.Contact.insertMany(contacts);
  await createInvitations({ models, tokenKey, publicUrl: '' }, campaign._id, contacts);
  const invitations = await models.Invitation.find({ campaign: campaign._id });
  await prefill(models, tagKey, Number(process.env.BENCH_STORED ?? 0), registry);
  const links = invitations.map((invitation) => ({
    path: personalLink({ tokenKey, publicUrl: '' }, invitation),
    csrf: csrfToken(sessionSecret, invitation.tokenHash),
  }));

  let cpuAtReady = process.cpuUsage();
  const server = app.listen(0, '127.0.0.1', () => {
    cpuAtReady = process.cpuUsage();
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.send!({ port, links } satisfies Prepared);
  });
  process.on('message', async (message) => {
    if (message === 'stop') {
      const stored = await models.ResponseRevision.countDocuments({ campaign: campaign._id });
      const cpu = process.cpuUsage(cpuAtReady);
      process.send!({ stored, cpuMs: (cpu.user + cpu.system) / 1000 });
      server.close();
      await connection.close();
      process.exit(0);
    }
  });
}

/** Stores `count` responses of another campaign, as submissions would have: invitation, revision 1, current response. */
async function prefill(models: import('../server/db/models.ts').Models, tagKey: Buffer, count: number, registry: import('../server/surveys/questionnaire-registry.ts').QuestionnaireRegistry) {
  if (count === 0) return;
  const questionnaire = registry.forStrands(['S1', 'S2', 'S3', 'S4']);
  const validated = questionnaire.validator.validate(completeAnswers(), 'en');
  if (!validated.ok) throw new Error('fixture is not valid');
  const tagOf = institutionTagger(models, tagKey);
  const isText = (question: string) => questionnaire.validator.isFreeText(question);
  const campaign = new Types.ObjectId();
  const institution = new Types.ObjectId();
  const started = performance.now();
  for (let done = 0; done < count; done += 500) {
    const ids = Array.from({ length: Math.min(500, count - done) }, () => new Types.ObjectId());
    const base = (id: Types.ObjectId) => ({
      campaign,
      invitation: id,
      institution,
      revision: 1,
      definitionVersion: questionnaire.version,
      strands: ['S1', 'S2', 'S3', 'S4'],
      language: 'en',
      submittedAt: new Date(),
      data: validated.data,
      items: validated.items,
      profile: { country: 'DE', institutionType: 'ivet_school', role: 'director' },
    });
    // As a change of the campaign's links that says nothing of them: its compact copy of the links is read afresh (link-copy.store.ts).
    await changingLinks(models, [campaign], async () => {
      await models.Invitation.insertMany(ids.map((id) => ({ _id: id, campaign, contact: new Types.ObjectId(), institution, tokenHash: `prefill-${id}`, revision: 1 })), { ordered: false });
      return new Map();
    });
    await models.ResponseRevision.insertMany(ids.map((id) => ({ _id: `${id}:1`, ...base(id) })), { ordered: false });
    await models.Response.insertMany(ids.map((id) => ({ _id: id, ...base(id) })), { ordered: false });
    // Their analytic records and journal entries too, as submissions leave them: the journal's head is where new entries go.
    await models.AnalyticRecord.collection.insertMany(await Promise.all(ids.map((id) => taggedRecordOf(tagOf, { _id: id, ...base(id) }, isText))));
    await appendJournal(models, ids);
    process.stderr.write(`\rprefill ${Math.min(done + 500, count)}/${count} stored responses`);
  }
  process.stderr.write(` in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
}

/** MONGODB_URI's server when set, else an embedded engine in a temporary directory (removed by stop). */
async function benchDatabase() {
  const fromEnv = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (fromEnv) return { baseUri: fromEnv, embedded: false, stop: async () => undefined };
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-submit-'));
  const engine = await startEmbeddedEngine({ dataDir });
  return {
    baseUri: engine.uri,
    embedded: true,
    async stop() {
      await engine.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Submission latency against databases already holding each number of responses. */
async function runGrowth(sizes: number[], respondents: number, concurrency: number) {
  const { baseUri, embedded, stop } = await benchDatabase();
  console.log(`bench:submit  growth  respondents=${respondents} concurrency=${concurrency} database=${embedded ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}`);
  const body = JSON.stringify({ data: completeAnswers(), baseRevision: 0, language: 'en' });
  const rows: Array<{ stored: number; stats: Stats }> = [];
  // One database that grows from size to size (filling 50,000 in bulk takes long enough once); the submissions of a run count as stored for the next.
  const uri = `${baseUri}/bench_growth_${randomBytes(4).toString('hex')}`;
  let filled = 0;
  for (const stored of [...sizes].sort((a, b) => a - b)) {
    process.env.BENCH_STORED = String(Math.max(0, stored - filled));
    filled = Math.max(filled, stored) + respondents;
    const stats = await runMode('validated', uri, respondents, concurrency, body);
    rows.push({ stored, stats });
    console.log(`${String(stored).padStart(7)} stored   ${stats.throughput.toFixed(1).padStart(6)} submissions/s   p50 ${stats.p50.toFixed(1)} ms   p95 ${stats.p95.toFixed(1)} ms   server CPU ${stats.cpuMsPer.toFixed(1)} ms/submission   stored ${stats.stored}/${respondents}   load ${loadAverage()}`);
  }
  await stop();
  const first = rows[0]!.stats;
  const last = rows.at(-1)!.stats;
  console.log(`\np50 at ${rows.at(-1)!.stored} stored ÷ p50 at ${rows[0]!.stored}: ${(last.p50 / first.p50).toFixed(2)}; server CPU per submission ${(last.cpuMsPer / first.cpuMsPer).toFixed(2)}`);
  console.log(`p95 at ${rows.at(-1)!.stored} stored ÷ p95 at ${rows[0]!.stored}: ${(last.p95 / first.p95).toFixed(2)} (target ≤ 1.5)`);
}

/** Validated submissions with the analytic record written, and without. */
async function runRecords(respondents: number, concurrency: number) {
  const { baseUri, embedded, stop } = await benchDatabase();
  console.log(`bench:submit  records  respondents=${respondents} concurrency=${concurrency} database=${embedded ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}`);
  const body = JSON.stringify({ data: completeAnswers(), baseRevision: 0, language: 'en' });
  const results: Partial<Record<Mode, Stats>> = {};
  for (const mode of ['no-records', 'validated', 'validated', 'no-records'] as const) {
    const stats = await runMode(mode, `${baseUri}/bench_${mode}_${randomBytes(4).toString('hex')}`, respondents, concurrency, body);
    const previous = results[mode];
    results[mode] = previous ? best(previous, stats) : stats;
  }
  await stop();
  const line = (label: string, s: Stats) =>
    console.log(`${label.padEnd(24)} ${s.throughput.toFixed(1).padStart(7)} submissions/s   p50 ${s.p50.toFixed(1)} ms   p95 ${s.p95.toFixed(1)} ms   server CPU ${s.cpuMsPer.toFixed(1)} ms/submission   stored ${s.stored}/${respondents}`);
  console.log('best of two runs per mode:');
  line('without the record', results['no-records']!);
  line('with the record', results.validated!);
  console.log(`\nthroughput with the analytic record ÷ without: ${(results.validated!.throughput / results['no-records']!.throughput).toFixed(2)} (target ≥ 0.9)`);
  console.log(`server CPU per submission without the record ÷ with: ${(results['no-records']!.cpuMsPer / results.validated!.cpuMsPer).toFixed(2)}   load ${loadAverage()}`);
}

async function runBenchmark(respondents: number, concurrency: number) {
  const { baseUri, embedded, stop } = await benchDatabase();
  console.log(`bench:submit  respondents=${respondents} concurrency=${concurrency} database=${embedded ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}`);
  const body = JSON.stringify({ data: completeAnswers(), baseRevision: 0, language: 'en' });
  console.log(`payload: ${body.length} bytes, ${Object.keys(completeAnswers()).length} answers\n`);

  const results: Record<string, Stats> = {};
  // Alternate the order over two rounds so warm-up and database growth favour neither mode.
  for (const mode of ['plain', 'validated', 'validated', 'plain'] as const) {
    const stats = await runMode(mode, `${baseUri}/bench_${mode}_${randomBytes(4).toString('hex')}`, respondents, concurrency, body);
    const previous = results[mode];
    results[mode] = previous ? best(previous, stats) : stats;
  }
  await stop();

  const line = (label: string, s: Stats) =>
    console.log(
      `${label.padEnd(22)} ${s.throughput.toFixed(1).padStart(7)} submissions/s   p50 ${s.p50.toFixed(1)} ms   p95 ${s.p95.toFixed(1)} ms   p99 ${s.p99.toFixed(1)} ms   stored ${s.stored}/${respondents}`,
    );
  console.log('best of two runs per mode:');
  line('without validation', results.plain!);
  line('with full validation', results.validated!);
  const ratio = results.validated!.throughput / results.plain!.throughput;
  console.log(`\nthroughput with validation = ${(ratio * 100).toFixed(1)}% of without (validation costs ${((1 - ratio) * 100).toFixed(1)}%; target: at most 20%)`);
}

interface Stats {
  throughput: number;
  /** CPU time of the server process during the timed submissions, per submission (wall times under load mislead). */
  cpuMsPer: number;
  p50: number;
  p95: number;
  p99: number;
  stored: number;
}

function best(a: Stats, b: Stats): Stats {
  return a.throughput >= b.throughput ? a : b;
}

async function runMode(mode: Mode, uri: string, respondents: number, concurrency: number, body: string): Promise<Stats> {
  // The server built as npm start runs it (scripts/run-built.mjs), not under tsx's hooks.
  const child: ChildProcess = fork(join(dirname(fileURLToPath(import.meta.url)), 'run-built.mjs'), [fileURLToPath(import.meta.url), '--role', 'server', '--mode', mode, '--uri', uri], {
    env: { ...process.env, BENCH_RESPONDENTS: String(respondents) },
  });
  const prepared = await new Promise<Prepared>((resolve) => child.once('message', (m) => resolve(m as Prepared)));
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < prepared.links.length) {
        const link = prepared.links[next++]!;
        const t0 = performance.now();
        const status = await post(agent, prepared.port, `${link.path}/submit`, link.csrf, body);
        latencies.push(performance.now() - t0);
        if (status !== 201) failures += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  child.send('stop');
  const { stored, cpuMs } = await new Promise<{ stored: number; cpuMs: number }>((resolve) => child.on('message', (m) => (m as { stored?: number }).stored !== undefined && resolve(m as { stored: number; cpuMs: number })));
  if (failures > 0) console.warn(`${mode}: ${failures} submissions did not answer 201`);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { throughput: prepared.links.length / seconds, cpuMsPer: cpuMs / prepared.links.length, p50: pct(50), p95: pct(95), p99: pct(99), stored };
}

function post(agent: Agent, port: number, path: string, csrf: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
