import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

/** A VET provider: school, college, training centre, company centre or chamber. */
const institutionSchema = new Schema(
  {
    name: { type: String, required: true, trim: true, maxlength: 300 },
    /** ISO 3166 alpha-2, Greece as EL (the survey's P1 codes). */
    country: { type: String, required: true, match: /^[A-Z]{2}$/ },
    /** One of the survey's P2 codes. */
    type: { type: String, required: true },
    /** Erasmus+ organisation ID (E + 8 digits), when known. */
    erasmusId: { type: String, match: /^E\d{8}$/ },
    /**
     * Identity used to recognise the same institution on re-import: the
     * Erasmus+ ID when given, else country + normalised name.
     */
    key: { type: String, required: true, unique: true },
    active: { type: Boolean, default: true },
    /** Made by the first start's demo campaign or by seed:demo: its contacts are never invited by a real campaign. */
    demo: { type: Boolean, default: false },
  },
  { timestamps: true },
);
institutionSchema.index({ country: 1, type: 1 });

export type Institution = InferSchemaType<typeof institutionSchema>;
export type InstitutionModel = Model<Institution>;

export function defineInstitutionModel(connection: Connection): InstitutionModel {
  return connection.model('Institution', institutionSchema, 'institutions');
}

export function institutionKey(input: { name: string; country: string; erasmusId?: string | null }): string {
  if (input.erasmusId) return `erasmus:${input.erasmusId}`;
  const name = input.name.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  return `name:${input.country}:${name}`;
}

/** What begins the key of every demo institution (demoInstitutionKey). */
export const DEMO_KEY_PREFIX = 'demo:';

/**
 * The key of a demo institution: apart from every real one, so that a real
 * institution of the same name (there are many "Lycée professionnel Jean
 * Jaurès") is never matched to it by an import, nor its contacts taken for demo data.
 */
export function demoInstitutionKey(input: { name: string; country: string; erasmusId?: string | null }): string {
  return `${DEMO_KEY_PREFIX}${institutionKey(input)}`;
}
