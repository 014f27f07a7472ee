import type { ResponseItem } from '../respond/answer-validator.ts';
import type { Dimension } from './evidence-filter.ts';

/**
 * What the evidence knows of one counted response: the contract between the
 * compact analytic records in the database (analytic-record.ts: how they are
 * stored, migrated and followed across processes) and the in-memory counts
 * (evidence-store.ts: how they are counted).
 */
export interface EvidenceRecord {
  /** The current response's id: the invitation's, or an anonymised record's own. */
  id: string;
  campaign: string;
  institution: string;
  revision: number;
  submittedAt: Date;
  profile: Partial<Record<Dimension, string>>;
  /** The closed answers, flattened as the validator flattens them (free text left out). */
  items: ResponseItem[];
}

/** Where records go as they are loaded, stored or removed: the evidence's in-memory state. */
export interface EvidenceSink {
  /** Adds a record, or replaces the one with the same id (its old contribution is taken out). Applying the same record twice changes nothing. */
  apply(record: EvidenceRecord): void;
  /** Takes a record out (its response was deleted); unknown ids are ignored. */
  remove(id: string): void;
}
