import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

/** A person at an institution who receives invitations (a school leader, a coordinator...). */
const contactSchema = new Schema(
  {
    institution: { type: Schema.Types.ObjectId, ref: 'Institution', required: true },
    name: { type: String, required: true, trim: true, maxlength: 200 },
    /** Stored lower-cased; one contact per address and institution. */
    email: { type: String, required: true, lowercase: true, trim: true, maxlength: 254 },
    language: { type: String, enum: LANGUAGES, default: 'en' },
    active: { type: Boolean, default: true },
    /** Set by one-click unsubscribe; an unsubscribed contact is never mailed again. */
    unsubscribedAt: { type: Date },
    /** Lists the contact belongs to (e.g. "network-north", "pilot"), for choosing a campaign's audience. */
    tags: { type: [String], default: () => [] },
    /** Made by the first start's demo campaign or by seed:demo: never invited by a real campaign. */
    demo: { type: Boolean, default: false },
  },
  { timestamps: true },
);
contactSchema.index({ institution: 1, email: 1 }, { unique: true });
contactSchema.index({ email: 1 });

export type Contact = InferSchemaType<typeof contactSchema> & { institution: Types.ObjectId };
export type ContactModel = Model<Contact>;

export function defineContactModel(connection: Connection): ContactModel {
  return connection.model('Contact', contactSchema, 'contacts');
}
