/**
 * npm run migrate:records — writes the analytic record (and its journal entry)
 * of every stored response that has none: databases from before records
 * existed; then replaces institution ids by their tags (institution-tag.ts) in
 * records and anonymous responses stored before tags; then copies the free-text
 * answers of responses stored before the quotes read copies (quote-text.ts). The platform runs the
 * same migrations at start; this command lets them
 * run ahead of time, with a progress line. Idempotent and resumable: a second
 * run writes nothing, and a run stopped half-way is finished by the next.
 * Connects like `npm run cli` (MONGODB_URI, else the embedded database under
 * DATA_DIR, which must not be in use by a running platform).
 *
 * Options: --again   check every response again, even after a completed run.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { DataDirLockedError } from '../server/db/data-dir-lock.ts';
import { EngineMissingError } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { migrateRecords, RECORDS_MIGRATION, textQuestionsOf } from '../server/evidence/analytic-record.ts';
import { INSTITUTION_TAGS_MIGRATION, InstitutionTagKeyError, migrateInstitutionTags, sealInstitutionSecrets } from '../server/evidence/institution-tag.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { migrateQuoteTexts, QUOTE_TEXTS_MIGRATION } from '../server/evidence/quote-text.ts';
import { secretsOf } from '../server/shared/secrets.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { again: { type: 'boolean', default: false } }, strict: true });
  const config = parseConfig(process.env);
  const database = await openDatabase(config);
  try {
    const models = defineModels(database.connection);
    await ensureIndexes(models);
    // The same key as the platform's, checked (and clear secrets sealed) as at its start: the tags written here are the platform's.
    const { tagKey } = secretsOf(config);
    await sealInstitutionSecrets(models, tagKey);
    const migrations = [RECORDS_MIGRATION, INSTITUTION_TAGS_MIGRATION, QUOTE_TEXTS_MIGRATION];
    if (values.again) await models.Claim.deleteMany({ _id: { $in: migrations } });
    else if ((await models.Claim.countDocuments({ _id: { $in: migrations } })) === migrations.length) {
      console.log('migrate:records: already done for this database (run with --again to check every response once more).');
      return 0;
    }
    const total = await models.Response.estimatedDocumentCount();
    const started = performance.now();
    const written = await migrateRecords(models, tagKey, textQuestionsOf(buildCatalogue(loadSurveyLibrary())), () => new Date(), (read, added) => {
      const line = `  ${read}/${total} responses read, ${added} records written, ${((performance.now() - started) / 1000).toFixed(0)} s`;
      if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
      else console.error(line);
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    console.log(`migrate:records: ${written} analytic records written (${total} stored responses).`);
    const tagged = await migrateInstitutionTags(models, tagKey, () => new Date(), (done, of) => console.error(`  ${done}/${of} institution ids replaced by their tags`));
    console.log(`migrate:records: ${tagged} institution ids replaced by their tags (analytic records and anonymous responses).`);
    const quoted = await migrateQuoteTexts(models, textQuestionsOf(buildCatalogue(loadSurveyLibrary())), () => new Date(), (read, added) => console.error(`  ${read}/${total} responses read, ${added} free-text copies written`));
    console.log(`migrate:records: ${quoted} responses' free-text answers copied for the quotes.`);
    return 0;
  } finally {
    await database.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof EngineMissingError || error instanceof DataDirLockedError || error instanceof InstitutionTagKeyError) console.error(error.message);
    else console.error('migrate:records failed:', error);
    process.exit(1);
  },
);
