import { Types } from 'mongoose';
import type { Models } from '../../server/db/models.ts';
import { decodeRecord, flattenerOf, recordOf, removeRecords, textQuestionsOf, writeRecord, type AnalyticRecordDoc, type RecordSource } from '../../server/evidence/analytic-record.ts';
import type { EvidenceRecord, EvidenceSink } from '../../server/evidence/evidence-record.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary } from '../../server/surveys/definitions.ts';

/** The survey library's catalogue, and how records are written and read against it (what the platform wires). */
export const catalogue = buildCatalogue(loadSurveyLibrary());
export const flatten = flattenerOf(catalogue);
export const isText = textQuestionsOf(catalogue);
export const decode = (doc: AnalyticRecordDoc) => decodeRecord(doc, flatten);

/** What the evidence sees, as calls: the records it holds, and the ids taken out in order. */
export class CollectingSink implements EvidenceSink {
  readonly records = new Map<string, EvidenceRecord>();
  readonly removed: string[] = [];
  apply(record: EvidenceRecord) {
    this.records.set(record.id, record);
  }
  remove(id: string) {
    this.records.delete(id);
    this.removed.push(id);
  }
}

/** A change a test plays on the analytic records: a response's next revision (answers from a pool), or its removal. */
export type RecordStep = { kind: 'submit'; respondent: number; answers: number; late?: boolean } | { kind: 'remove'; respondent: number };

/** What a pool of answer sets holds: validated answers and the respondent's profile. */
export type PooledAnswers = Omit<RecordSource, '_id' | 'campaign' | 'institution' | 'revision' | 'submittedAt'>;

/**
 * Plays changes on one campaign's records as the respondent path and the
 * erasure do (journal intent, then record): respondent i answers for
 * institution i % institutions, and its revision r is dated
 * `minuteOf(step, r)` minutes after 1 March 2026.
 */
export function recordPlayer(
  models: Models,
  campaign: Types.ObjectId,
  pool: readonly PooledAnswers[],
  options: { respondents: number; institutions: number; minuteOf: (step: Extract<RecordStep, { kind: 'submit' }>, revision: number) => number },
) {
  const ids = Array.from({ length: options.respondents }, () => new Types.ObjectId());
  const revisions = new Map<number, number>();
  return async (steps: readonly RecordStep[]) => {
    for (const step of steps) {
      if (step.kind === 'remove') {
        await removeRecords(models, [ids[step.respondent]!]);
        continue;
      }
      const revision = (revisions.get(step.respondent) ?? 0) + 1;
      revisions.set(step.respondent, revision);
      const submittedAt = new Date(Date.UTC(2026, 2, 1) + options.minuteOf(step, revision) * 60_000);
      const source = { _id: ids[step.respondent], campaign, institution: `t:institution${step.respondent % options.institutions}`, revision, submittedAt, ...pool[step.answers % pool.length]! };
      await writeRecord(models, recordOf(source, isText));
    }
  };
}
