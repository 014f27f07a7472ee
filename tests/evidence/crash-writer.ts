/**
 * A second process for crash-and-compaction.test.ts: connects to the database
 * given as argv[2], writes the analytic record of the current response whose
 * id is argv[3] (tagged with the institution tag key argv[4], hex) (as the respondent path does after storing it), and stops
 * between the journal intent and the record write, telling the parent, which
 * kills it there with SIGKILL.
 */
import { connect } from '../../server/db/connection.ts';
import { defineModels } from '../../server/db/models.ts';
import { journalTestHooks, taggedRecordOf, textQuestionsOf, writeRecord, type StoredSource } from '../../server/evidence/analytic-record.ts';
import { institutionTagger } from '../../server/evidence/institution-tag.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';

const [uri, responseId, tagKeyHex] = process.argv.slice(2);
const connection = await connect(uri!);
const models = defineModels(connection);
const response = await models.Response.findById(responseId).lean();
journalTestHooks.afterIntent = async () => {
  process.send!('between the intent and the record');
  await new Promise(() => undefined);
};
await writeRecord(models, await taggedRecordOf(institutionTagger(models, Buffer.from(tagKeyHex!, 'hex')), response as unknown as StoredSource, textQuestionsOf(buildCatalogue(loadSurveyLibrary()))));
process.send!('record written');
