import { Schema, type Connection } from 'mongoose';

/**
 * A one-time link with which a user sets a new password, made by a
 * coordinator. The _id is the SHA-256 hash of the link's random token (the
 * token itself is stored nowhere). Using the link deletes this document by
 * its _id, and only the request whose delete removed it may set the password:
 * a delete by _id is decided once even on FerretDB v1, where a conditional
 * update is a read followed by a write.
 */
const passwordResetSchema = new Schema(
  {
    _id: { type: String, required: true },
    user: { type: Schema.Types.ObjectId, ref: 'User', required: true },
    expiresAt: { type: Date, required: true },
    createdBy: { type: String, required: true, maxlength: 300 },
  },
  { timestamps: true, versionKey: false },
);

export function definePasswordResetModel(connection: Connection) {
  return connection.model('PasswordReset', passwordResetSchema, 'password_resets');
}
