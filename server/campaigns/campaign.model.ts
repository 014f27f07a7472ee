import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';
import { LANGUAGES } from '../shared/languages.ts';

export const STRAND_CODES = ['S1', 'S2', 'S3', 'S4'] as const;

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
    /** Set when the coordinator closes the campaign early; links then stop accepting answers. */
    closedAt: { type: Date },
    demo: { type: Boolean, default: false },
  },
  { timestamps: true },
);

export type Campaign = InferSchemaType<typeof campaignSchema>;
export type CampaignModel = Model<Campaign>;

export function defineCampaignModel(connection: Connection): CampaignModel {
  return connection.model('Campaign', campaignSchema, 'campaigns');
}

/** A campaign accepts answers between its open and close dates, unless closed early. */
export function campaignIsOpen(campaign: Pick<Campaign, 'opensAt' | 'closesAt' | 'closedAt'>, now: Date): boolean {
  return !campaign.closedAt && campaign.opensAt <= now && now < campaign.closesAt;
}
