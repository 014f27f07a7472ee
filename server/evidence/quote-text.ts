import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { Models } from '../db/models.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { isDuplicateKey, toObjectId } from './analytic-record.ts';
import { DIMENSION_NAMES, type Dimension } from './evidence-filter.ts';

/**
 * The free-text answers of a current response, compact: what the quotes
 * read instead of the response. On FerretDB v1 a document costs what its
 * values cost to decode, whatever a projection keeps, and a response holds
 * every answer in `data`; here the profile and the texts are one string
 * each. One document per current (named) response that has a quotable text
 * (or had one: a later revision without any leaves an empty copy, see
 * writeQuoteText), under the response's _id. It names the institution and holds what the
 * person wrote, so it goes wherever the response's free text goes: an
 * erasure, an anonymisation (anonymous responses keep no free text), a
 * removal of demo data.
 *
 * Written after the current response and before its analytic record
 * (respond.service.ts recordRevision), so a crash in between is repaired as
 * the record is, on the next opening of the link; only forward by revision.
 */
const quoteTextSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    campaign: { type: Schema.Types.ObjectId, required: true },
    institution: { type: Schema.Types.ObjectId, required: true },
    revision: { type: Number, required: true },
    /** The profile (breakdown dimensions), as JSON: {"country":"AT",...}. */
    p: { type: String, required: true },
    /** The quotable answers, as JSON: [[strand, question, text], ...]. */
    t: { type: String, required: true },
  },
  { versionKey: false },
);

export interface QuoteTextDoc {
  _id: Types.ObjectId;
  campaign: Types.ObjectId;
  institution: Types.ObjectId;
  revision: number;
  p: string;
  t: string;
}

export type QuoteTextModel = Model<QuoteTextDoc>;

export function defineQuoteTextModel(connection: Connection): { QuoteText: QuoteTextModel } {
  return { QuoteText: connection.model('QuoteText', quoteTextSchema, 'quote_texts') as unknown as QuoteTextModel };
}

/** A current response as the quotes see it, decoded. */
export interface QuotedResponse {
  _id: Types.ObjectId;
  institution: Types.ObjectId;
  profile: Partial<Record<Dimension, string>>;
  items: Array<{ strand: string; question: string; value: string }>;
}

/** What a quote document is made from: a stored (named) response. */
export interface QuoteSourceResponse {
  _id: unknown;
  campaign: unknown;
  institution?: unknown;
  revision: number;
  profile?: Record<string, unknown> | null;
  items?: ReadonlyArray<{ strand: string; question: string; value: unknown }> | null;
}

/** Which questions' answers are free text (the catalogue's, or the validator's). */
export type IsFreeText = (question: string) => boolean;

/**
 * The quote document of a response: its free-text answers outside the
 * profile. Null when it has none (or no institution id: an anonymous response).
 */
export function quoteTextOf(response: QuoteSourceResponse, isText: IsFreeText): QuoteTextDoc | null {
  const texts = (response.items ?? []).filter((i) => i.strand !== 'P' && isText(i.question) && typeof i.value === 'string').map((i) => [i.strand, i.question, i.value as string]);
  return texts.length === 0 ? null : copyOf(response, texts);
}

/** The copy of a response holding these texts; null for a response without an institution id (an anonymous one). */
function copyOf(response: QuoteSourceResponse, texts: string[][]): QuoteTextDoc | null {
  if (response.institution == null) return null;
  const profile: Record<string, string> = {};
  for (const dimension of DIMENSION_NAMES) if (typeof response.profile?.[dimension] === 'string') profile[dimension] = response.profile[dimension] as string;
  return {
    _id: toObjectId(response._id),
    campaign: toObjectId(response.campaign),
    institution: toObjectId(response.institution),
    revision: response.revision,
    p: JSON.stringify(profile),
    t: JSON.stringify(texts),
  };
}

export function decodeQuoteText(doc: QuoteTextDoc): QuotedResponse {
  const profile = JSON.parse(doc.p) as Partial<Record<Dimension, string>>;
  const items = (JSON.parse(doc.t) as Array<[string, string, string]>).map(([strand, question, value]) => ({ strand, question, value }));
  return { _id: doc._id, institution: doc.institution, profile, items };
}

/**
 * Brings the response's quote document to its revision: written, replaced
 * when the stored one is of an earlier revision. A later revision stored
 * already is kept. A revision after the first that has no quotable text left
 * is written as an empty copy rather than removing the old one: a migration
 * running beside it (migrateQuoteTexts), which may have read the earlier
 * revision, then finds a copy there and cannot bring the old text back.
 */
export async function writeQuoteText(models: Pick<Models, 'QuoteText'>, response: QuoteSourceResponse, isText: IsFreeText): Promise<void> {
  const doc = quoteTextOf(response, isText) ?? (response.revision > 1 ? copyOf(response, []) : null);
  if (!doc) return;
  const _id = doc._id;
  try {
    await models.QuoteText.collection.insertOne(doc);
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    await models.QuoteText.collection.replaceOne({ _id, revision: { $lt: doc.revision } }, doc);
  }
}

export async function removeQuoteTexts(models: Pick<Models, 'QuoteText'>, ids: readonly Types.ObjectId[]): Promise<void> {
  if (ids.length === 1) await models.QuoteText.deleteOne({ _id: ids[0] });
  else if (ids.length > 1) await models.QuoteText.deleteMany({ _id: { $in: [...ids] } });
}

/** The quote documents of these campaigns (every campaign when none is named), decoded, as they are read: a reader that stops early reads no more. */
export async function* quoteTexts(models: Pick<Models, 'QuoteText'>, campaigns: readonly string[]): AsyncGenerator<QuotedResponse> {
  const filter = campaigns.length ? { campaign: { $in: campaigns.map((id) => new Types.ObjectId(id)) } } : {};
  for await (const doc of models.QuoteText.find(filter).lean<QuoteTextDoc[]>().cursor({ batchSize: 200 })) yield decodeQuoteText(doc as QuoteTextDoc);
}

/** One response's quote document, decoded; null when it has none. */
export async function readQuoteText(models: Pick<Models, 'QuoteText'>, id: string): Promise<QuotedResponse | null> {
  const doc = await models.QuoteText.findOne({ _id: new Types.ObjectId(id) }).lean<QuoteTextDoc>();
  return doc ? decodeQuoteText(doc) : null;
}

export const QUOTE_TEXTS_MIGRATION = 'migration:quote-texts-v1';

/**
 * Writes the quote documents of responses stored before they existed: once
 * per database (a marker records that it ran), idempotent and resumable (a
 * response whose document is there is skipped; one written meanwhile by a
 * submission is as new or newer). Reads every current response once.
 * Returns how many documents it wrote.
 */
export async function migrateQuoteTexts(
  models: Pick<Models, 'QuoteText' | 'Response' | 'Claim'>,
  isText: IsFreeText,
  now: () => Date,
  onProgress?: (read: number, written: number) => void,
): Promise<number> {
  if (await models.Claim.exists({ _id: QUOTE_TEXTS_MIGRATION })) return 0;
  const have = new Set((await models.QuoteText.find({}, { _id: 1 }).lean()).map((d) => String(d._id)));
  let read = 0;
  let written = 0;
  let batch: QuoteTextDoc[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      await models.QuoteText.collection.insertMany(batch, { ordered: false });
      written += batch.length;
    } catch (error) {
      // A duplicate is a document a submission wrote meanwhile: as new or newer.
      if (!isDuplicateKey(error)) throw error;
      written += batch.length - ((error as { writeErrors?: unknown[] }).writeErrors?.length ?? 0);
    }
    batch = [];
  };
  for await (const response of models.Response.find({}, { campaign: 1, institution: 1, revision: 1, profile: 1, items: 1 }).lean().cursor({ batchSize: 500 })) {
    read += 1;
    const doc = have.has(String(response._id)) ? null : quoteTextOf(response as unknown as QuoteSourceResponse, isText);
    if (doc) batch.push(doc);
    if (batch.length === 500) await flush();
    if (read % 1000 === 0) onProgress?.(read, written + batch.length);
  }
  await flush();
  if (read > 0) onProgress?.(read, written);
  await claimOnce(models, QUOTE_TEXTS_MIGRATION, now());
  return written;
}
