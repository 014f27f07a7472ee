import { Schema, type Connection, type Model } from 'mongoose';

/**
 * The coordinator's decision on one quote: approved (reviewers see it) or
 * hidden. A quote without a decision is pending and reviewers do not see it.
 * `_id` is the quote's key (response, question and a hash of the text), so a
 * decision is written with an exact {_id} filter and a changed answer is a new
 * quote, never approved by an old decision.
 */
const quoteReviewSchema = new Schema(
  {
    _id: { type: String, required: true },
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    state: { type: String, enum: ['approved', 'hidden'], required: true },
    by: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
quoteReviewSchema.index({ campaign: 1 });

export interface QuoteReview {
  _id: string;
  campaign: unknown;
  state: 'approved' | 'hidden';
  by: string;
  at: Date;
}

export function defineQuoteReviewModel(connection: Connection): Model<QuoteReview> {
  return connection.model<QuoteReview>('QuoteReview', quoteReviewSchema, 'quote_reviews');
}
