import { Schema, type Connection } from 'mongoose';

/**
 * One counter of a rate limit: the hits of one key (a personal link, a client
 * address, an account at an address) in one fixed window of time. Its _id is
 * "<limit>:<hashed key>:<window start>", so every read and write goes by
 * primary key, the only look-up FerretDB v1 answers without reading the
 * whole collection. Kept to three or four fields: FerretDB's cost of reading a
 * document grows with its number of fields. Reached only through
 * rate-limit.store.ts.
 */
const rateLimitWindowSchema = new Schema(
  {
    _id: { type: String, required: true },
    hits: { type: Number, required: true },
    /** The end of the window: the sweep deletes windows past it (FerretDB v1 has no TTL index). */
    until: { type: Date, required: true },
    /** The latest hit, kept only by counters that need it (the sign-in back-off). */
    last: { type: Date },
  },
  { versionKey: false },
);

export function defineRateLimitWindowModel(connection: Connection) {
  return connection.model('RateLimitWindow', rateLimitWindowSchema, 'rate_limit_windows');
}

export type RateLimitWindowModel = ReturnType<typeof defineRateLimitWindowModel>;
