import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

/** One line of the audit log: who did what, to what, when. Entries are only ever added. */
const auditEntrySchema = new Schema({
  at: { type: Date, required: true },
  /** The signed-in user's email, or "command line" / "setup link". */
  actor: { type: String, required: true, maxlength: 300 },
  /** A dotted verb such as "user.add", "import.commit", "campaign.update". */
  action: { type: String, required: true, maxlength: 100 },
  /** What it acted on, e.g. "campaign:<id>" or an email address. */
  target: { type: String, maxlength: 500 },
  /** Extra facts as JSON text: its keys never become field names in the database. */
  details: { type: String, maxlength: 20_000 },
});
auditEntrySchema.index({ at: -1 });
auditEntrySchema.index({ action: 1, at: -1 });

export type AuditEntry = InferSchemaType<typeof auditEntrySchema>;
export type AuditEntryModel = Model<AuditEntry>;

export function defineAuditEntryModel(connection: Connection): AuditEntryModel {
  return connection.model('AuditEntry', auditEntrySchema, 'audit_entries');
}
