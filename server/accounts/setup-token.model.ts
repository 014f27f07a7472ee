import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

/**
 * A one-time link that creates the first coordinator of an empty platform.
 * Only the SHA-256 hash of its token is stored; it works once, until it expires.
 */
const setupTokenSchema = new Schema(
  {
    tokenHash: { type: String, required: true, unique: true },
    expiresAt: { type: Date, required: true },
    usedAt: { type: Date },
  },
  { timestamps: true },
);

export type SetupToken = InferSchemaType<typeof setupTokenSchema>;
export type SetupTokenModel = Model<SetupToken>;

export function defineSetupTokenModel(connection: Connection): SetupTokenModel {
  return connection.model('SetupToken', setupTokenSchema, 'setup_tokens');
}
