/**
 * npm run seed:demo — fills the configured database (the embedded one by
 * default) with synthetic institutions across 15 countries, their contacts, a
 * closed demo campaign and about 450 responses, so a new user sees a
 * meaningful evidence dashboard. Every answer set goes through the same
 * validator as a real submission. Running it again adds nothing.
 *
 * Stop the platform first when it uses the embedded database (only one
 * process can own its files), or point MONGODB_URI at the running one.
 */
import { parseConfig } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { institutionKey } from '../server/institutions/institution.model.ts';
import { createInvitations } from '../server/invitations/invitation.service.ts';
import { revisionId } from '../server/respond/response.model.ts';
import { loadSecrets } from '../server/shared/secrets.ts';
import { QuestionnaireRegistry } from '../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from './synthetic-responses.ts';

const CAMPAIGN_NAME = 'Demo wave 2025 (synthetic data)';
const INSTITUTIONS = 150;
const CONTACTS_PER_INSTITUTION = 4;
const ANSWER_SHARE = 0.75;
const STRANDS = ['S1', 'S2', 'S3', 'S4'] as const;
const TOWNS = ['Nord', 'Süd', 'Centre', 'Riverside', 'Hill', 'Harbour', 'Valley', 'Lake'];

async function main() {
  const config = parseConfig(process.env);
  const database = await openDatabase(config);
  try {
    const models = defineModels(database.connection);
    await ensureIndexes(models);
    if (await models.Campaign.exists({ name: CAMPAIGN_NAME })) {
      console.log(`"${CAMPAIGN_NAME}" already exists: nothing to add.`);
      return;
    }
    const secrets = loadSecrets({ dataDir: config.DATA_DIR, tokenKeyHex: config.TOKEN_KEY, sessionSecret: config.SESSION_SECRET });
    const random = randomSource(2025);
    const registry = new QuestionnaireRegistry();
    const campaign = await models.Campaign.create({
      name: CAMPAIGN_NAME,
      strands: [...STRANDS],
      opensAt: new Date('2025-03-01T00:00:00Z'),
      closesAt: new Date('2025-05-31T00:00:00Z'),
    });

    let responses = 0;
    for (let i = 0; i < INSTITUTIONS; i++) {
      const profile = syntheticInstitution(random, i);
      const name = `Demo VET centre ${profile.country}-${random.pick(TOWNS)} ${i + 1}`;
      const institution = await models.Institution.create({ name, country: profile.country, type: profile.type, key: institutionKey({ name, country: profile.country }) });
      const contacts = await models.Contact.insertMany(
        Array.from({ length: CONTACTS_PER_INSTITUTION }, (_, c) => ({
          institution: institution._id,
          name: `Demo person ${i + 1}.${c + 1}`,
          email: `demo-${i + 1}-${c + 1}@demo.invalid`,
          language: random.pick(['en', 'fr', 'de'] as const),
        })),
      );
      await createInvitations({ models, tokenKey: secrets.tokenKey, publicUrl: config.PUBLIC_URL ?? '' }, campaign._id, contacts);
      const invitations = await models.Invitation.find({ campaign: campaign._id, institution: institution._id });
      for (const invitation of invitations) {
        if (random.next() > ANSWER_SHARE) continue;
        const result = validatedResponse(registry, syntheticAnswers(random, profile), [...STRANDS]);
        if (!result.ok) continue;
        const submittedAt = new Date(campaign.opensAt.getTime() + random.int(1, 80) * 86_400_000);
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
          items: result.items,
          profile: result.profile,
        };
        // Keyed as respond.service.ts keys them: the revision by "<invitation>:<revision>", the current response by the invitation.
        await models.ResponseRevision.create({ ...doc, _id: revisionId(invitation._id, 1) });
        await models.Response.create({ ...doc, _id: invitation._id });
        await models.Invitation.updateOne({ _id: invitation._id }, { $set: { revision: 1, openedAt: submittedAt, startedAt: submittedAt, completedAt: submittedAt } });
        responses += 1;
      }
    }
    await models.Campaign.updateOne({ _id: campaign._id }, { $set: { closedAt: campaign.closesAt } });
    console.log(`Added "${CAMPAIGN_NAME}": ${INSTITUTIONS} institutions in 15 countries, ${INSTITUTIONS * CONTACTS_PER_INSTITUTION} invitations, ${responses} responses.`);
    console.log('Sign in as a coordinator or reviewer and open /evidence.');
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error('seed:demo failed:', error);
  process.exit(1);
});
