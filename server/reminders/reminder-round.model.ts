import { Schema, type Connection, type InferSchemaType, type Model, type Types } from 'mongoose';

/**
 * One sending round of a campaign: round 0 is the invitation, 1.. the
 * reminders. The unique (campaign, round) index is what stops two platform
 * instances from both starting round N: only one insert can succeed.
 * `enqueuedAt` is set once every message of the round is in the outbox; a
 * round without it was interrupted and is completed on the next check.
 */
const reminderRoundSchema = new Schema(
  {
    campaign: { type: Schema.Types.ObjectId, ref: 'Campaign', required: true },
    round: { type: Number, required: true, min: 0 },
    startedAt: { type: Date, required: true },
    startedBy: { type: String, required: true },
    enqueuedAt: { type: Date },
    recipients: { type: Number },
  },
);
reminderRoundSchema.index({ campaign: 1, round: 1 }, { unique: true });

export type ReminderRound = InferSchemaType<typeof reminderRoundSchema> & { campaign: Types.ObjectId };
export type ReminderRoundModel = Model<ReminderRound>;

export function defineReminderRoundModel(connection: Connection): ReminderRoundModel {
  return connection.model('ReminderRound', reminderRoundSchema, 'reminder_rounds');
}
