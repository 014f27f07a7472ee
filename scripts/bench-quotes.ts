/**
 * npm run bench:quotes — what the quotes page and the printable report pay
 * for their free-text answers: the read of a campaign's free text (the
 * quotes' compact copies, quote-text.ts; against the responses themselves,
 * as read before) and of its invited names (once per filter and minute), what a
 * response stored through this process costs the kept read (taken in alone,
 * read by _id; before, every kept read was forgotten and made again whole),
 * and removing the names from every quote a page shows. Uses a fresh database:
 * on MONGODB_URI if set, else an embedded FerretDB in a temporary directory.
 * Prints figures with the load average; asserts nothing.
 *
 *   BENCH_RESPONSES=2000 npm run bench:quotes   (the default; each response has a free-text answer and its own invitation)
 */
import { randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import { nameRedactor, QuoteCache, quotedQuestions, readQuoted } from '../server/evidence/evidence-quotes.service.ts';
import { textQuestionsOf } from '../server/evidence/analytic-record.ts';
import { buildCatalogue } from '../server/evidence/question-catalogue.ts';
import { quoteTexts, quoteTextOf } from '../server/evidence/quote-text.ts';
import { loadSurveyLibrary } from '../server/surveys/definitions.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { benchDatabase } from './bench-database.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';
import { loadAverage, median } from './bench-figures.ts';

const RESPONSES = Number(process.env.BENCH_RESPONSES ?? 2000);
if (!Number.isInteger(RESPONSES) || RESPONSES < 1) throw new Error(`BENCH_RESPONSES is a whole number of responses, at least 1, not ${process.env.BENCH_RESPONSES}`);
const INSTITUTIONS = Math.max(20, Math.round(RESPONSES / 4));
const ANSWER_POOL = 100;
const STRANDS = ['S1', 'S2', 'S3', 'S4'];
const REPEATS = 5;

const load = () => `load ${loadAverage()}`;

async function main() {
  const database = await benchDatabase('quotes');
  const { models } = database;
  const catalogue = buildCatalogue(loadSurveyLibrary());
  const textQuestions = quotedQuestions(catalogue);
  const isText = textQuestionsOf(catalogue);
  try {
    console.log(`bench:quotes  engine=${database.engine}  responses=${RESPONSES.toLocaleString('en')}  ${load()}`);
    const random = randomSource(2026);
    const registry = new QuestionnaireRegistry();
    const campaign = new Types.ObjectId();
    const institutions = Array.from({ length: INSTITUTIONS }, (_, i) => ({ _id: new Types.ObjectId(), name: `Vocational College ${i} of Riverside`, key: `k-${i}`, ...syntheticInstitution(random, i) }));
    await models.Institution.collection.insertMany(institutions.map(({ _id, name, key, country, type }) => ({ _id, name, key, country, type })) as never[]);
    const pool: Array<Extract<ReturnType<typeof validatedResponse>, { ok: true }>> = [];
    while (pool.length < ANSWER_POOL) {
      const result = validatedResponse(registry, syntheticAnswers(random, institutions[pool.length % institutions.length]!), STRANDS);
      if (result.ok) pool.push(result);
    }
    const storeStart = performance.now();
    // Each response from an invitation of its own, with a contact of its own: ~2 names a response for the redaction.
    const store = async (from: number, to: number) => {
      const contacts = [];
      const invitations = [];
      const responses = [];
      for (let i = from; i < to; i++) {
        const institution = institutions[i % institutions.length]!;
        const answers = pool[i % pool.length]!;
        const id = new Types.ObjectId();
        const contact = new Types.ObjectId();
        contacts.push({ _id: contact, institution: institution._id, name: `Leader ${i} Surname${i}`, email: `leader${i}@school.example` });
        invitations.push({ _id: id, campaign, contact, institution: institution._id, tokenHash: randomBytes(16).toString('hex') });
        const text = `Answer ${i}: our partner in ${institution.country} helped, and Leader ${i} organised the cover for classes.`;
        responses.push({ _id: id, campaign, invitation: id, institution: institution._id, revision: 1, definitionVersion: answers.version, strands: STRANDS, language: 'en', submittedAt: new Date(Date.UTC(2026, 2, 1) + i * 1000), data: { ...answers.data, S1_6: text }, items: [{ strand: 'S1', question: 'S1_6', value: text }], profile: { ...answers.profile, country: institution.country } });
      }
      await models.Contact.collection.insertMany(contacts as never[]);
      await models.Invitation.collection.insertMany(invitations as never[]);
      await models.Response.collection.insertMany(responses as never[]);
      // The quotes' copies, as the respondent path writes them beside each response.
      await models.QuoteText.collection.insertMany(responses.map((r) => quoteTextOf(r, isText)!));
      return responses;
    };
    for (let i = 0; i < RESPONSES; i += 500) {
      await store(i, Math.min(RESPONSES, i + 500));
      process.stderr.write(`\rstored ${Math.min(RESPONSES, i + 500)}/${RESPONSES}`);
    }
    process.stderr.write(` in ${((performance.now() - storeStart) / 1000).toFixed(0)} s\n`);

    const filter = { campaigns: [String(campaign)], where: {} };
    const deps = { models, catalogue };
    const whole: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      await readQuoted(deps, filter);
      whole.push(performance.now() - t);
    }
    const read = await readQuoted(deps, filter);
    console.log(`read of the quotes' copies of free text and the names (${read.responses.length} quotes kept, ${read.invitations.size} invitations): median ${median(whole).toFixed(0)} ms of ${REPEATS} (${whole.map((t) => t.toFixed(0)).join(', ')})  ${load()}`);
    // What the same read cost until 7 December 2026: the responses themselves, filtered on their items (FerretDB decodes every response).
    const responsesRead: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      await models.Response.find({ campaign, 'items.question': { $in: textQuestions } }, { institution: 1, profile: 1, items: 1 }).limit(500).lean();
      responsesRead.push(performance.now() - t);
    }
    const copiesRead: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t = performance.now();
      let kept = 0;
      for await (const _ of quoteTexts(models, [String(campaign)])) if (++kept === 500) break;
      copiesRead.push(performance.now() - t);
    }
    console.log(`of which the free text (500 responses' worth): the quotes' copies ${median(copiesRead).toFixed(0)} ms, against ${median(responsesRead).toFixed(0)} ms for the responses as read before (medians of ${REPEATS})  ${load()}`);

    // A response stored through this process, its invitation known to the read: taken into the kept read.
    const cache = new QuoteCache();
    await cache.read(filter, () => Promise.resolve(read));
    const takenIn: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const [stored] = await store(RESPONSES + i, RESPONSES + i + 1);
      // Its invitation was made after the read: as if it had been there (the case of a response from an invitation the read knew).
      (read.invitations as Set<string>).add(String(stored!._id));
      const t = performance.now();
      cache.responseStored(String(stored!._id), String(campaign), models, textQuestions);
      await cache.read(filter, () => Promise.reject(new Error('the kept read was made again')));
      takenIn.push(performance.now() - t);
    }
    console.log(`after a response stored through this process: taken in alone ${median(takenIn).toFixed(1)} ms (median of ${REPEATS}), against a read made again whole ${median(whole).toFixed(0)} ms before`);

    // Removing the names from every quote a page shows (up to 500).
    const texts = read.responses.flatMap((r) => (r.items ?? []).map((item) => String(item.value)));
    const names = [...institutions.map((i) => i.name), ...Array.from({ length: RESPONSES }, (_, i) => `Leader ${i} Surname${i}`)];
    const t = performance.now();
    const redact = nameRedactor(names);
    const made = performance.now() - t;
    for (const text of texts) redact(text);
    const all = performance.now() - t;
    console.log(`names removed from ${texts.length} quotes (${names.length.toLocaleString('en')} names): ${all.toFixed(0)} ms, of which ${made.toFixed(0)} ms making the matcher  ${load()}`);
  } finally {
    await database.close();
  }
}

await main();
