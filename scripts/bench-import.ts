/**
 * npm run bench:import [-- --rows 20000]
 *
 * Imports a generated contacts file of N rows (one institution per two
 * contacts) into a fresh database: times the preview, the commit, and the
 * preview of the same file again (which must find nothing to change), and
 * inviting a campaign of them all. Uses MONGODB_URI when set, else a
 * temporary embedded database.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inviteCampaign } from '../server/campaigns/campaign.service.ts';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { INSTITUTION_TYPES } from '../server/institutions/institution-codes.ts';
import { importContacts, planImport } from '../server/institutions/import.service.ts';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '20000' } } });
const rows = Number(args.rows);

const dataDir = process.env.MONGODB_URI ? undefined : mkdtempSync(join(tmpdir(), 'bench-import-'));
const engine = dataDir ? await startEmbeddedEngine({ dataDir }) : undefined;
const base = engine?.uri ?? process.env.MONGODB_URI!.replace(/\/[^/]*$/, '');
const connection = await connect(`${base}/bench_import_${randomBytes(4).toString('hex')}`);
try {
  const models = defineModels(connection);
  await ensureIndexes(models);
  const deps = { models, now: () => new Date() };
  const countries = ['DE', 'FR', 'IT', 'ES', 'PL', 'EL', 'AT', 'FI'];
  const lines = ['institution_name;country;institution_type;erasmus_id;contact_name;email;language'];
  for (let i = 0; i < rows; i += 1) {
    const institution = Math.floor(i / 2);
    lines.push(
      `"Vocational School No. ${institution}";${countries[institution % countries.length]};${INSTITUTION_TYPES[institution % INSTITUTION_TYPES.length]!.code};;Contact ${i};contact${i}@school${institution}.example;${['en', 'fr', 'de'][i % 3]}`,
    );
  }
  const text = lines.join('\n');
  const time = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const result = await work();
    const seconds = (performance.now() - start) / 1000;
    console.log(`${label.padEnd(28)} ${seconds.toFixed(2).padStart(7)} s  ${Math.round(rows / seconds).toString().padStart(7)} rows/s`);
    return result;
  };
  console.log(`Contacts file: ${rows} rows, ${(Buffer.byteLength(text) / 1024 / 1024).toFixed(2)} MB`);
  const preview = await time('preview (empty database)', () => planImport(deps, text));
  await time('commit', () => importContacts(deps, text, { commit: true, actor: 'bench' }));
  const again = await time('preview of the same file', () => planImport(deps, text));
  const campaign = await models.Campaign.create({ name: 'Bench', strands: ['S1'], opensAt: new Date(), closesAt: new Date(Date.now() + 86_400_000) });
  const invited = await time('invite (personal links)', () => inviteCampaign({ ...deps, tokenKey: randomBytes(32), publicUrl: '' }, campaign._id, 'bench'));
  console.log(`Preview counts: ${JSON.stringify(preview.counts)}; again: ${JSON.stringify(again.counts)}; links created: ${invited.created}`);
  console.log(`Stored: ${await models.Institution.countDocuments()} institutions, ${await models.Contact.countDocuments()} contacts`);
  console.log(`Peak memory (RSS): ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
  if (again.counts.create + again.counts.update !== 0) {
    console.error('Re-importing the same file would change something: idempotence is broken.');
    process.exitCode = 1;
  }
} finally {
  await connection.dropDatabase();
  await connection.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
