/**
 * npm run seed:demo — fills the configured database (the embedded one by
 * default) with synthetic institutions across 15 countries, their contacts and
 * two closed demo waves a year apart (about 800 responses), so that a new user
 * sees a meaningful evidence dashboard and wave comparison. Every answer set
 * goes through the same validator as a real submission.
 *
 * Everything it makes is marked demo: real campaigns never invite it, and
 * "remove demo data" (page or `npm run cli -- demo:remove --commit`) deletes it.
 *
 * Resumable and idempotent: the data is generated from fixed seeds, each
 * record is written only if missing (institutions by key, contacts by
 * institution and address, links by campaign and contact, responses by their
 * invitation), so a second run adds nothing and a run stopped half-way is
 * completed by the next one. While the platform runs on the embedded
 * database, run it with the MONGODB_URI line the platform printed (the data
 * directory is locked to one process).
 *
 * Options: --institutions <n> (150).
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { DataDirLockedError } from '../server/db/data-dir-lock.ts';
import { EngineMissingError } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes, type Models } from '../server/db/models.ts';
import { taggedRecordOf, writeRecord } from '../server/evidence/analytic-record.ts';
import { writeQuoteText } from '../server/evidence/quote-text.ts';
import { InstitutionTagKeyError, institutionTagger, sealInstitutionSecrets } from '../server/evidence/institution-tag.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { DEFAULT_RETENTION_MONTHS } from '../server/privacy/privacy-notice.ts';
import { journalProgressReset } from '../server/respond/progress-changes.ts';
import { revisionId } from '../server/respond/response.model.ts';
import { noteContactsChange } from '../server/shared/contact-changes.ts';
import { secretsOf } from '../server/shared/secrets.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';

const WAVES = [
  { wave: 1, name: 'Demo wave 2024 (synthetic data)', opensAt: '2024-03-01', closesAt: '2024-06-01', answerShare: 0.62 },
  { wave: 2, name: 'Demo wave 2025 (synthetic data)', opensAt: '2025-03-01', closesAt: '2025-06-01', answerShare: 0.74 },
] as const;
const CONTACTS_PER_INSTITUTION = 4;
const STRANDS = ['S1', 'S2', 'S3', 'S4'] as const;
const TOWNS = ['Nord', 'Süd', 'Centre', 'Riverside', 'Hill', 'Harbour', 'Valley', 'Lake'];
const LANGUAGES_BY_COUNTRY: Record<string, 'en' | 'fr' | 'de'> = { AT: 'de', DE: 'de', BE: 'fr', FR: 'fr' };
const DAY = 86_400_000;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { institutions: { type: 'string', default: '150' } }, strict: true });
  const institutions = Number(values.institutions);
  if (!Number.isInteger(institutions) || institutions < 1 || institutions > 5000) throw new ConfigError('--institutions must be a whole number from 1 to 5000');
  const config = parseConfig(process.env);
  const database = await openDatabase(config);
  try {
    const models = defineModels(database.connection);
    await ensureIndexes(models);
    const secrets = secretsOf(config);
    // The platform's key, checked as at its start: the demo responses' tags must be the ones the platform computes.
    await sealInstitutionSecrets(models, secrets.tagKey);
    const registry = new QuestionnaireRegistry();
    const { validator } = registry.forStrands([...STRANDS]);
    const campaigns = await Promise.all(WAVES.map((wave) => ensureCampaign(models, wave)));
    const tagOf = institutionTagger(models, secrets.tagKey);
    const progress = progressLine(institutions);
    const totals = { added: 0, responses: 0, rejected: [] as string[] };

    for (let i = 0; i < institutions; i++) {
      // Each institution, and each answer, has its own seed: what is made never depends on what a stopped run left.
      const profile = syntheticInstitution(randomSource(10_000 + i), i);
      const name = `Demo VET centre ${profile.country}-${TOWNS[i % TOWNS.length]} ${i + 1}`;
      const key = institutionKey({ name, country: profile.country });
      await models.Institution.updateOne(
        { key },
        { $setOnInsert: { name, country: profile.country, type: profile.type, key, active: true }, $set: { demo: true } },
        { upsert: true },
      );
      const institution = (await models.Institution.findOne({ key }, { _id: 1 }).lean())!;
      const contacts = [];
      for (let c = 0; c < CONTACTS_PER_INSTITUTION; c++) {
        const email = `demo-${i + 1}-${c + 1}@demo.invalid`;
        const language = LANGUAGES_BY_COUNTRY[profile.country] ?? 'en';
        await models.Contact.updateOne(
          { institution: institution._id, email },
          { $setOnInsert: { institution: institution._id, email, name: `Demo person ${i + 1}.${c + 1}`, language, active: true }, $set: { demo: true } },
          { upsert: true },
        );
        contacts.push((await models.Contact.findOne({ institution: institution._id, email }, { institution: 1, language: 1, email: 1 }).lean())!);
      }
      // A running platform keeps the contact list until this stamp moves (audience-state.ts).
      await noteContactsChange(models);
      for (const [w, wave] of WAVES.entries()) {
        const campaign = campaigns[w]!;
        await createInvitations({ models, tokenKey: secrets.tokenKey, publicUrl: config.PUBLIC_URL ?? '' }, campaign._id, contacts);
        const invitations = new Map(
          (await models.Invitation.find({ campaign: campaign._id, institution: institution._id }, { contact: 1, language: 1 }).lean()).map((inv) => [String(inv.contact), inv]),
        );
        for (const [c, contact] of contacts.entries()) {
          const random = randomSource(wave.wave * 1_000_000 + i * 10 + c);
          if (random.next() > wave.answerShare) continue;
          const result = validatedResponse(registry, syntheticAnswers(random, profile, wave.wave), [...STRANDS]);
          if (!result.ok) {
            totals.rejected.push(`${contact.email} (${wave.name}): ${JSON.stringify(result.errors).slice(0, 300)}`);
            continue;
          }
          const invitation = invitations.get(String(contact._id))!;
          const submittedAt = new Date(campaign.opensAt.getTime() + random.int(1, 85) * DAY + random.int(8, 19) * 3600_000);
          const doc = {
            campaign: campaign._id,
            invitation: invitation._id,
            institution: institution._id,
            revision: 1,
            definitionVersion: result.version,
            strands: [...STRANDS],
            language: invitation.language,
            submittedAt,
            data: result.data,
            // As respond.service.ts stores them: the free-text items only; the closed answers are counted from the analytic record.
            items: result.items.filter((item) => validator.isFreeText(item.question)),
            profile: result.profile,
          };
          // Keyed as respond.service.ts keys them; the invitation's state is set again on a rerun (same values).
          const added = await createOnce(models.ResponseRevision, { ...doc, _id: revisionId(invitation._id, 1) });
          // The completion mark, as the respondent path writes it (a database started before seeding has had its backfill).
          await createOnce(models.Completion, { _id: invitation._id, campaign: campaign._id, at: submittedAt });
          await createOnce(models.Response, { ...doc, _id: invitation._id });
          await writeQuoteText(models, { ...doc, _id: invitation._id }, (question) => validator.isFreeText(question));
          // A running platform follows this record through the evidence journal.
          await writeRecord(models, await taggedRecordOf(tagOf, { ...doc, _id: invitation._id }, (question) => validator.isFreeText(question)));
          await models.Invitation.updateOne({ _id: invitation._id }, { $set: { revision: 1, openedAt: submittedAt, startedAt: submittedAt, completedAt: submittedAt, demo: true } });
          totals.responses += 1;
          if (added) totals.added += 1;
        }
      }
      progress.draw(i + 1, totals.responses);
    }
    progress.end();
    // A running platform's fieldwork page follows the links' progress through this journal (progress-changes.ts): read it whole.
    await journalProgressReset(models, campaigns.map((c) => c._id));
    for (const rejected of totals.rejected) console.error(`  refused by the validator: ${rejected}`);
    console.log(
      `seed:demo: ${institutions} demo institutions in 15 countries, ${institutions * CONTACTS_PER_INSTITUTION} contacts, ` +
        `${WAVES.length} waves (${WAVES.map((w) => `"${w.name}"`).join(', ')}): ${totals.responses} responses, ${totals.added} added by this run.`,
    );
    console.log('Sign in as a coordinator or reviewer and open /evidence (and /evidence/waves to compare the two waves).');
    return totals.rejected.length > 0 ? 1 : 0;
  } finally {
    await database.close();
  }
}

/**
 * The wave's campaign, created once (by name) and marked demo; closed, so that
 * no email is ever sent for it. Its retention runs the usual months from the
 * day it is seeded, not from its close: the waves closed in 2024 and 2025, and
 * a running platform purged a wave whose retention had run out within the
 * hour of seeding it (retention.service.ts), its free-text comments and
 * contacts with it. A later run moves it on again, never back.
 */
async function ensureCampaign(models: Models, wave: (typeof WAVES)[number]) {
  const closesAt = new Date(`${wave.closesAt}T00:00:00Z`);
  const now = new Date();
  const sinceClose = (now.getUTCFullYear() - closesAt.getUTCFullYear()) * 12 + (now.getUTCMonth() - closesAt.getUTCMonth()) + 1;
  const retentionMonths = Math.min(240, Math.max(0, sinceClose) + DEFAULT_RETENTION_MONTHS);
  await models.Campaign.updateOne(
    { name: wave.name },
    { $setOnInsert: { name: wave.name, strands: [...STRANDS], opensAt: new Date(`${wave.opensAt}T00:00:00Z`), closesAt, closedAt: closesAt }, $set: { demo: true }, $max: { retentionMonths } },
    { upsert: true },
  );
  return (await models.Campaign.findOne({ name: wave.name }).lean())!;
}

/** Inserts the document unless one with its _id exists; true when this call inserted it. */
async function createOnce(model: { create(doc: never): Promise<unknown> }, doc: Record<string, unknown>): Promise<boolean> {
  try {
    await model.create(doc as never);
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 11000) return false;
    throw error;
  }
}

/** `[#######-----] 52/150 institutions · 301 responses` on stderr: redrawn on a terminal, else a line every 5 %. */
function progressLine(total: number) {
  const tty = Boolean(process.stderr.isTTY);
  let lastStep = -1;
  return {
    draw(done: number, responses: number) {
      const filled = Math.round((done / total) * 30);
      const text = `[${'#'.repeat(filled)}${'-'.repeat(30 - filled)}] ${done}/${total} institutions · ${responses} responses`;
      if (tty) {
        process.stderr.write(`\r${text}\x1b[K`);
        return;
      }
      const step = Math.floor((done / total) * 20);
      if (step > lastStep || done === total) process.stderr.write(`${text}\n`);
      lastStep = step;
    },
    end() {
      if (tty) process.stderr.write('\n');
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof EngineMissingError || error instanceof DataDirLockedError || error instanceof InstitutionTagKeyError) console.error(error.message);
    else console.error('seed:demo failed:', error);
    process.exit(1);
  },
);
