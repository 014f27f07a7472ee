import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';
import { DEFAULT_RETENTION_MONTHS, LAWFUL_BASES } from '../privacy/privacy-notice.ts';
import { LANGUAGES } from '../shared/languages.ts';

export const STRAND_CODES = ['S1', 'S2', 'S3', 'S4'] as const;
export const EMAIL_KINDS = ['invitation', 'reminder'] as const;
export type EmailKind = (typeof EMAIL_KINDS)[number];

/** One email text of a campaign, Handlebars source checked on save (see campaign-email.service.ts). */
const emailTemplateSchema = new Schema(
  {
    kind: { type: String, enum: EMAIL_KINDS, required: true },
    language: { type: String, enum: LANGUAGES, required: true },
    subject: { type: String, required: true, maxlength: 300 },
    body: { type: String, required: true, maxlength: 20_000 },
  },
  { _id: false },
);

/** A campaign's privacy notice in one language. */
const noticeSchema = new Schema(
  {
    language: { type: String, enum: LANGUAGES, required: true },
    text: { type: String, required: true, maxlength: 20_000 },
  },
  { _id: false },
);

/** A survey wave: which questionnaires, when it is open, and to whom it is sent. */
const campaignSchema = new Schema(
  {
    name: { type: String, required: true, trim: true, maxlength: 200 },
    /** The strand questionnaires included; the profile section always comes first. */
    strands: { type: [{ type: String, enum: STRAND_CODES }], required: true },
    opensAt: { type: Date, required: true },
    closesAt: { type: Date, required: true },
    languages: { type: [{ type: String, enum: LANGUAGES }], default: () => [...LANGUAGES] },
    senderName: { type: String, trim: true, maxlength: 200 },
    replyTo: { type: String, trim: true, maxlength: 254 },
    /** Invitation and reminder texts per language; a missing one falls back to the platform's default text. */
    templates: { type: [emailTemplateSchema], default: () => [] },
    /** Set when the coordinator closes the campaign early; links then stop accepting answers. */
    closedAt: { type: Date },
    /** Reminders sent by the scheduler: a round every `everyDays` after the previous one, at most `maxRounds`. */
    reminderPolicy: {
      enabled: { type: Boolean, default: false },
      everyDays: { type: Number, min: 1, max: 60, default: 7 },
      maxRounds: { type: Number, min: 0, max: 10, default: 2 },
    },
    /** The lawful basis of the processing (GDPR Art. 6); with consent, respondents agree before answering. */
    lawfulBasis: { type: String, enum: LAWFUL_BASES, default: 'legitimate-interest' },
    /** The privacy notice per language; a missing one is the platform's default text (privacy-notice.ts). */
    privacyNotices: { type: [noticeSchema], default: () => [] },
    /** Personal data is purged this many months after the close date (retention.service.ts). */
    retentionMonths: { type: Number, min: 1, max: 240, default: DEFAULT_RETENTION_MONTHS },
    /**
     * Who the campaign invites: active contacts narrowed by every list that is
     * not empty (see audience.service.ts). Demo contacts are never part of a
     * campaign that is not itself a demo.
     */
    audience: {
      countries: { type: [String], default: () => [] },
      types: { type: [String], default: () => [] },
      tags: { type: [String], default: () => [] },
      /** A list of addresses (from a CSV): only these contacts. */
      emails: { type: [String], default: () => [] },
    },
    /** A demo campaign (the first start's, seed:demo's): it invites demo contacts only; "remove demo data" deletes it. */
    demo: { type: Boolean, default: false },
  },
  { timestamps: true },
);

export type Campaign = InferSchemaType<typeof campaignSchema>;
export type CampaignModel = Model<Campaign>;

export function defineCampaignModel(connection: Connection): CampaignModel {
  return connection.model('Campaign', campaignSchema, 'campaigns');
}

/**
 * When the coordinator closed the campaign before its close date, or undefined: a campaign
 * whose `closedAt` is at or after its close date (as seed:demo marks its past waves) simply
 * ended on its last day, and is shown so.
 */
export function closedEarlyAt(campaign: { closesAt: Date; closedAt?: Date | null }): Date | undefined {
  return campaign.closedAt && campaign.closedAt < campaign.closesAt ? campaign.closedAt : undefined;
}

/** A campaign accepts answers between its open and close dates, unless closed early. */
export function campaignIsOpen(campaign: Pick<Campaign, 'opensAt' | 'closesAt' | 'closedAt'>, now: Date): boolean {
  return !campaign.closedAt && campaign.opensAt <= now && now < campaign.closesAt;
}
