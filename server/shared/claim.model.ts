import { Schema, type Connection } from 'mongoose';

/**
 * "This happened once" markers. FerretDB v1 applies a conditional update as a
 * read followed by a write, so two processes can both win a findOneAndUpdate
 * claim; inserting a document with a chosen _id cannot succeed twice.
 */
const claimSchema = new Schema({ _id: { type: String, required: true }, at: { type: Date, required: true } }, { versionKey: false });

export function defineClaimModel(connection: Connection) {
  return connection.model('Claim', claimSchema, 'claims');
}

export type ClaimModel = ReturnType<typeof defineClaimModel>;

/** True for the one caller that claims the key first; false for everyone after. */
export async function claimOnce(models: { Claim: ClaimModel }, key: string, at: Date): Promise<boolean> {
  try {
    await models.Claim.create({ _id: key, at });
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 11000) return false;
    throw error;
  }
}
