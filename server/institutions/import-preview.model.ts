import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

/**
 * An uploaded contacts file waiting for the coordinator's confirmation. The
 * text stays on the server between preview and commit, so what is committed
 * is exactly what was previewed; it is claimed once by an atomic update.
 */
const importPreviewSchema = new Schema({
  /** Random, unguessable: the confirmation form carries it. */
  previewId: { type: String, required: true, unique: true },
  actor: { type: String, required: true },
  fileName: { type: String, maxlength: 300 },
  text: { type: String, required: true },
  createdAt: { type: Date, required: true },
  committedAt: { type: Date },
});
importPreviewSchema.index({ createdAt: 1 });

export type ImportPreview = InferSchemaType<typeof importPreviewSchema>;
export type ImportPreviewModel = Model<ImportPreview>;

export function defineImportPreviewModel(connection: Connection): ImportPreviewModel {
  return connection.model('ImportPreview', importPreviewSchema, 'import_previews');
}
