import { decodeRecord, flattenerOf, textQuestionsOf, type AnalyticRecordDoc } from '../../server/evidence/analytic-record.ts';
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
