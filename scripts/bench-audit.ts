/**
 * npm run bench:audit — the audit log's page (/admin/audit) at BENCH_ENTRIES
 * entries (5,000 unless set; details of a few hundred bytes each, as imports
 * and sends write them): the page's first load (the log read whole for its
 * index, audit-index.ts), a load with nothing new, a load after a new entry
 * (its journal entry read by _id), and a load filtered by one action; beside
 * the same page read from the log as it was before the index (a sorted page,
 * a count and the distinct actions, each a read of every entry on the
 * embedded engine). Uses a fresh database: on MONGODB_URI if set, else an
 * embedded FerretDB in a temporary directory. Prints figures with the load
 * average; asserts nothing.
 */
import { listAudit, recordAudit } from '../server/accounts/audit.service.ts';
import { benchDatabase } from './bench-database.ts';
import { loadAverage, median } from './bench-figures.ts';

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 5000);
if (!Number.isInteger(ENTRIES) || ENTRIES < 1) throw new Error(`BENCH_ENTRIES is a whole number of entries, at least 1, not ${process.env.BENCH_ENTRIES}`);
const ACTIONS = ['user.sign-in', 'campaign.update', 'import.commit', 'campaign.send', 'privacy.access', 'reminder.round'];
const PER_PAGE = 50;
const load = () => `load ${loadAverage()}`;

async function main() {
  const database = await benchDatabase('audit');
  const { models } = database;
  try {
    const start = Date.UTC(2026, 0, 1);
    const details = JSON.stringify({ rows: 120, skipped: 3, note: 'x'.repeat(300) });
    for (let from = 0; from < ENTRIES; from += 1000) {
      const batch = Array.from({ length: Math.min(1000, ENTRIES - from) }, (_, k) => ({
        at: new Date(start + (from + k) * 60_000),
        actor: 'coordinator@bench.example',
        action: ACTIONS[(from + k) % ACTIONS.length]!,
        target: `campaign:${from + k}`,
        details,
      }));
      await models.AuditEntry.insertMany(batch, { lean: true });
    }
    console.log(`bench:audit  ${ENTRIES} audit entries, ${PER_PAGE} a page, database=${database.engine}`);
    const timed = async (label: string, read: () => Promise<unknown>, times = 1) => {
      const took: number[] = [];
      for (let i = 0; i < times; i++) {
        const begun = performance.now();
        const own = await read();
        // A read that times itself (after its own write) says so.
        took.push(typeof own === 'number' ? own : performance.now() - begun);
      }
      console.log(`${label.padEnd(46)} ${median(took).toFixed(1).padStart(8)} ms${times > 1 ? ` (median of ${times})` : ''}   ${load()}`);
    };
    const asBefore = async (action?: string) => {
      const filter = action ? { action } : {};
      await Promise.all([
        models.AuditEntry.find(filter).sort({ at: -1, _id: -1 }).limit(PER_PAGE).lean(),
        models.AuditEntry.countDocuments(filter),
        models.AuditEntry.distinct('action'),
      ]);
    };
    await timed('first load (the log read for the index)', () => listAudit(models, { page: 1, perPage: PER_PAGE }));
    await timed('nothing new', () => listAudit(models, { page: 1, perPage: PER_PAGE }), 5);
    await timed('page 20', () => listAudit(models, { page: 20, perPage: PER_PAGE }), 5);
    let minute = ENTRIES;
    await timed('after a new entry (the load alone)', async () => {
      await recordAudit(models, { actor: 'coordinator@bench.example', action: 'campaign.update', target: 'campaign:new', at: new Date(start + minute++ * 60_000) });
      const begun = performance.now();
      await listAudit(models, { page: 1, perPage: PER_PAGE });
      return performance.now() - begun;
    }, 5);
    await timed('one action', () => listAudit(models, { page: 1, perPage: PER_PAGE, action: 'import.commit' }), 5);
    await timed('as before: sorted page, count, distinct', () => asBefore(), 3);
    await timed('as before, one action', () => asBefore('import.commit'), 3);
  } finally {
    await database.close();
  }
}

await main();
