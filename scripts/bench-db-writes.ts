/**
 * npm run bench:db-writes [-- --docs 3000]
 *
 * What the sender's kinds of round trip cost the database, per document:
 * inserts of small documents (claims, outcomes) a few or many at a time,
 * inserts of emails as sent (some 3 KB each), removals of due entries by _id
 * (one statement each, in one command) or by one `$in`, and reads of a small
 * collection whole (pauses, suppressions). Prints the wall time, the
 * database's CPU time (from /proc) and this process's CPU time per document,
 * with the load average. The database is the embedded FerretDB (SQLite) in a
 * temporary directory, or MONGODB_URI when set (then the database's CPU is not known).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { loadAverage } from './bench-figures.ts';

const { values: args } = parseArgs({ options: { docs: { type: 'string', default: '3000' } } });
const count = Number(args.docs);

let dataDir: string | undefined;
let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
let baseUri = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
if (!baseUri) {
  dataDir = mkdtempSync(join(tmpdir(), 'bench-db-writes-'));
  engine = await startEmbeddedEngine({ dataDir });
  baseUri = engine.uri;
}
const connection = await connect(`${baseUri}/bench_db_writes_${randomBytes(4).toString('hex')}`);
// Collections of string _ids, as the sender's are.
const collection = (name: string) => connection.db!.collection<{ _id: string } & Record<string, unknown>>(name);

async function measure(label: string, docs: number, run: () => Promise<unknown>) {
  const engineBefore = (processCpuSeconds(engine?.pid) ?? 0);
  const ownBefore = process.cpuUsage();
  const start = performance.now();
  await run();
  const wall = performance.now() - start;
  const own = process.cpuUsage(ownBefore);
  const database = engine ? `database cpu ${((((processCpuSeconds(engine.pid) ?? 0) - engineBefore) * 1000) / docs).toFixed(2)} ms` : 'database cpu ?';
  console.log(`${label.padEnd(58)} wall ${(wall / docs).toFixed(2)} ms · ${database} · this process ${((own.user + own.system) / 1000 / docs).toFixed(2)} ms  (per document)`);
}

const claimLike = (i: number) => ({ _id: `${new Types.ObjectId()}:0`, message: new Types.ObjectId(), campaign: new Types.ObjectId(), attempt: 0, worker: 'bench', at: new Date(), messageId: `<${i}@bench.test>` });
const dueLike = () => ({
  _id: `${new Types.ObjectId()}:0`,
  campaign: new Types.ObjectId(),
  at: new Date(),
  message: JSON.stringify({ contact: new Types.ObjectId(), invitation: new Types.ObjectId(), kind: 'invitation', round: 0, to: 'someone@bench.example', language: 'en' }),
});
const body = 'x'.repeat(1500);
const sentLike = () => ({
  _id: String(new Types.ObjectId()),
  campaign: new Types.ObjectId(),
  sentAt: new Date(),
  headers: { From: 'Survey <survey@bench.test>', To: 'someone@bench.example', Subject: 'Invitation', 'Message-ID': '<x@bench.test>', 'List-Unsubscribe': '<https://survey.test/u/x>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  text: body,
  html: body,
});

try {
  console.log(`bench:db-writes  ${count} documents per line  database=${engine ? 'embedded FerretDB (SQLite)' : 'MONGODB_URI'}  load average ${loadAverage(1)}`);
  for (const batch of [1, 5, 10, 20, 100]) {
    const claims = collection(`claims_${batch}`);
    await measure(`insert a claim-sized document, ${batch} per insert`, count, async () => {
      for (let i = 0; i < count; i += batch) await claims.insertMany(Array.from({ length: batch }, (_, j) => claimLike(i + j)), { ordered: false });
    });
  }
  for (const batch of [5, 20, 100]) {
    const sent = collection(`sent_${batch}`);
    await measure(`insert an email as sent (3 KB), ${batch} per insert`, count, async () => {
      for (let i = 0; i < count; i += batch) await sent.insertMany(Array.from({ length: batch }, sentLike), { ordered: false });
    });
  }
  for (const batch of [5, 200]) {
    const due = collection(`due_one_${batch}`);
    const entries = Array.from({ length: count }, dueLike);
    await due.insertMany(entries);
    await measure(`remove due entries by _id, ${batch} statements per command (view ${count})`, count, async () => {
      for (let i = 0; i < count; i += batch) await due.bulkWrite(entries.slice(i, i + batch).map(({ _id }) => ({ deleteOne: { filter: { _id } } })), { ordered: false });
    });
  }
  for (const batch of [100, 500, 1000]) {
    const due = collection(`due_in_${batch}`);
    const entries = Array.from({ length: count }, dueLike);
    await due.insertMany(entries);
    await measure(`remove due entries by one $in of ${batch} (view ${count} at first)`, count, async () => {
      for (let i = 0; i < count; i += batch) await due.deleteMany({ _id: { $in: entries.slice(i, i + batch).map((e) => e._id) } });
    });
  }
  const reads = 500;
  const empty = collection('pauses');
  await measure('read an empty collection whole (per read)', reads, async () => {
    for (let i = 0; i < reads; i++) await empty.find({}).toArray();
  });
  const small = collection('suppressions');
  await small.insertMany(Array.from({ length: 20 }, (_, i) => ({ _id: `s${i}`, email: `s${i}@bench.example`, reason: 'bounce', at: new Date() })));
  await measure('read a collection of 20 small documents whole (per read)', reads, async () => {
    for (let i = 0; i < reads; i++) await small.find({}, { projection: { email: 1 } }).toArray();
  });
  console.log(`load average ${loadAverage(1)}`);
} finally {
  await connection.dropDatabase();
  await connection.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
