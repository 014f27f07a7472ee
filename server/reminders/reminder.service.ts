import { Types } from 'mongoose';
import { contactListState, contactListWithStamp, type ContactListState } from '../campaigns/audience-state.ts';
import { formatDateTime } from '../shared/dates.ts';
import { plural } from '../shared/plural.ts';
import type { Models } from '../db/models.ts';
import { campaignProgress, readCampaignProgress, type CampaignProgress } from '../fieldwork/fieldwork.service.ts';
import { canMail, enqueueMessages, insertIgnoringDuplicates, type MessageToEnqueue } from '../mail/outbox.service.ts';
import { isLanguage } from '../shared/languages.ts';
import { KeptValues, noteChange } from '../shared/change-stamp.ts';

export interface ReminderDeps {
  models: Models;
  now: () => Date;
}

export interface ReminderRecipient extends MessageToEnqueue {
  name: string;
  country: string;
  institutionType: string;
  institutionName: string;
  /** Began answering: the reminder says "finish where you left off". */
  started: boolean;
}

/**
 * Who a reminder would go to now: contacts whose invitation was sent and who
 * have not completed (no completedAt and no completion mark), whose link is
 * not revoked, who are active, not unsubscribed and not suppressed (bounced).
 * A reminder is never sent to a contact whose response is complete (the
 * sender checks each one's completion mark again before it goes). The
 * campaign's links and emails are read now; the contact list is the kept one,
 * checked against its stamp (audience-state.ts).
 */
export async function reminderRecipients(deps: Pick<ReminderDeps, 'models'>, campaignId: Types.ObjectId): Promise<ReminderAudience> {
  const [progress, contactList] = await Promise.all([readCampaignProgress(deps, campaignId), contactListState(deps.models)]);
  return recipientsOf(campaignId, progress, contactList);
}

interface ReminderAudience {
  recipients: ReminderRecipient[];
  /** Not reminded, and said so in the dry run: whether their invitation arrived is for the coordinator to settle. */
  unknownInvitations: number;
}

function recipientsOf(campaignId: Types.ObjectId, { links, delivery }: CampaignProgress, { contacts, institutions, suppressed }: ContactListState): ReminderAudience {
  const recipients: ReminderRecipient[] = [];
  let unknownInvitations = 0;
  for (const link of links) {
    if (link.completed) continue;
    const state = delivery.get(link.id);
    if (state === 'unknown') unknownInvitations += 1;
    if (state !== 'sent') continue;
    const contact = contacts.get(link.contact);
    const institution = institutions.get(link.institution);
    if (!contact || !institution || !canMail(contact, suppressed)) continue;
    recipients.push({
      campaign: campaignId,
      contact: contact._id,
      invitation: new Types.ObjectId(link.id),
      to: contact.email,
      language: isLanguage(link.language) ? link.language : 'en',
      name: contact.name,
      country: institution.country,
      institutionType: institution.type,
      institutionName: institution.name,
      started: link.started,
    });
  }
  return { recipients, unknownInvitations };
}

/** The dry run shown before any reminder is sent: how many, by country × institution type, and who. */
/**
 * Made of what the fieldwork page keeps (fieldwork.service.ts campaignProgress)
 * and the kept contact list, so a load with nothing changed reads their
 * change stamps only, not the campaign's links, emails and completion marks,
 * which on the embedded engine means every campaign's.
 */
export async function reminderDryRun(deps: Pick<ReminderDeps, 'models'>, campaignId: Types.ObjectId): Promise<DryRun> {
  const [progress, { state: contactList, stamp }] = await Promise.all([campaignProgress(deps, campaignId), contactListWithStamp(deps.models)]);
  // Kept until the links, their progress, the emails' states or the contact list move: at 50,000 links, making it took ~0.14 s a load.
  return keptDryRuns.get(deps.models, String(campaignId), `${progress.version}|${stamp}`, async () => dryRunOf(campaignId, progress, contactList));
}

type DryRun = ReturnType<typeof dryRunOf>;
const keptDryRuns = new KeptValues<DryRun>();

function dryRunOf(campaignId: Types.ObjectId, progress: CampaignProgress, contactList: ContactListState) {
  const { recipients, unknownInvitations } = recipientsOf(campaignId, progress, contactList);
  const cells = new Map<string, { country: string; institutionType: string; count: number; started: number }>();
  for (const r of recipients) {
    const key = `${r.country}|${r.institutionType}`;
    const cell = cells.get(key) ?? { country: r.country, institutionType: r.institutionType, count: 0, started: 0 };
    cell.count += 1;
    if (r.started) cell.started += 1;
    cells.set(key, cell);
  }
  return {
    total: recipients.length,
    started: recipients.filter((r) => r.started).length,
    /** Contacts left out because whether their invitation left is unknown (see the sending page). */
    unknownInvitations,
    bySegment: [...cells.values()].sort((a, b) => a.country.localeCompare(b.country) || a.institutionType.localeCompare(b.institutionType)),
    recipients: recipients.map(({ name, to, country, institutionType, institutionName, started }) => ({ name, email: to, country, institutionType, institutionName, started })),
  };
}

/**
 * The rounds of a campaign so far, oldest first (round 0 is the invitation),
 * the number the next reminder round would have, and from when it can start
 * (the policy's days after the last round: startReminderRound refuses it before).
 */
export async function reminderRounds(deps: Pick<ReminderDeps, 'models'>, campaignId: Types.ObjectId) {
  const [found, campaign] = await Promise.all([deps.models.ReminderRound.find({ campaign: campaignId }).lean(), deps.models.Campaign.findById(campaignId, { reminderPolicy: 1 }).lean()]);
  const rounds = found.sort((a, b) => a.round - b.round);
  const last = rounds.at(-1);
  const everyDays = campaign?.reminderPolicy?.everyDays ?? DEFAULT_EVERY_DAYS;
  return { rounds, nextRound: last ? last.round + 1 : undefined, everyDays, nextStartsAt: last ? new Date(last.startedAt.getTime() + everyDays * DAY_MS) : undefined };
}

/** Changes a campaign's reminder policy; returns false when the campaign does not exist. */
export async function setReminderPolicy(
  deps: Pick<ReminderDeps, 'models'>,
  campaignId: Types.ObjectId,
  policy: { enabled: boolean; everyDays: number; maxRounds: number },
): Promise<boolean> {
  const result = await deps.models.Campaign.updateOne({ _id: campaignId }, { $set: { reminderPolicy: policy } });
  return result.matchedCount === 1;
}

export type RoundStart = { started: true; round: number; recipients: number } | { started: false; reason: string };

const DAY_MS = 86_400_000;
/** Days between rounds when a campaign has no reminder policy. */
const DEFAULT_EVERY_DAYS = 7;

/**
 * Starts the next reminder round of a campaign. The round document is
 * inserted first; its unique (campaign, round) index lets only one of two
 * concurrent callers (two instances, or a click and the scheduler) start
 * round N. The messages are then enqueued (idempotently) and the round is
 * marked enqueued; a round interrupted in between is completed by
 * runDueReminders or continueReminderRound.
 *
 * `expectedRound` is the round the caller saw as next (the reminders page
 * sends it with its form, the command line takes it from --new-round): a
 * double click, a second instance or a repeated command then asks for the
 * same round and only one insert succeeds, where without it the later
 * request could read the first one's round and start the one after.
 *
 * A round never starts within the policy's interval (`everyDays`, 7 when
 * the campaign has no policy) of the previous round or the invitation,
 * whoever asks: a contact is not reminded twice in a few seconds because a
 * command was run again.
 */
export async function startReminderRound(deps: ReminderDeps, campaignId: Types.ObjectId, actor: string, expectedRound?: number): Promise<RoundStart> {
  const [last, campaign] = await Promise.all([
    deps.models.ReminderRound.findOne({ campaign: campaignId }).sort({ round: -1 }).lean(),
    deps.models.Campaign.findById(campaignId, { reminderPolicy: 1 }).lean(),
  ]);
  if (!last) return { started: false, reason: 'The invitations have not been sent yet.' };
  const round = last.round + 1;
  if (expectedRound !== undefined && expectedRound !== round) {
    return { started: false, reason: `Reminder round ${expectedRound} has already been started; the next one would be round ${round}.` };
  }
  const everyDays = campaign?.reminderPolicy?.everyDays ?? DEFAULT_EVERY_DAYS;
  const earliest = new Date(last.startedAt.getTime() + everyDays * DAY_MS);
  if (deps.now() < earliest) {
    const previous = last.round === 0 ? 'the invitations were' : `reminder round ${last.round} was`;
    return {
      started: false,
      reason: `${previous.charAt(0).toUpperCase()}${previous.slice(1)} started on ${formatDateTime(last.startedAt)}, and the reminder policy leaves ${plural(everyDays, 'day', 'days')} between rounds: round ${round} can start from ${formatDateTime(earliest)}.`,
    };
  }
  const inserted = await insertIgnoringDuplicates(deps.models.ReminderRound.collection, [
    { campaign: campaignId, round, startedAt: deps.now(), startedBy: actor },
  ]);
  if (inserted.size === 0) return { started: false, reason: `Reminder round ${round} has just been started by someone else.` };
  const recipients = await enqueueRound(deps, campaignId, round);
  return { started: true, round, recipients };
}

/** The campaign's latest reminder round (round 1 or later), or undefined when none has started. */
export async function latestReminderRound(deps: Pick<ReminderDeps, 'models'>, campaignId: Types.ObjectId) {
  const last = await deps.models.ReminderRound.findOne({ campaign: campaignId }).sort({ round: -1 }).lean();
  return last && last.round > 0 ? last : undefined;
}

/**
 * Before a round is continued: a round whose enqueueing was interrupted is
 * completed (idempotently), so that it reaches everyone it was meant for.
 */
export async function completeRoundEnqueueing(deps: ReminderDeps, round: { campaign: Types.ObjectId; round: number; enqueuedAt?: Date | null }): Promise<void> {
  if (!round.enqueuedAt) await enqueueRound(deps, round.campaign, round.round);
}

async function enqueueRound(deps: ReminderDeps, campaignId: Types.ObjectId, round: number): Promise<number> {
  const { recipients } = await reminderRecipients(deps, campaignId);
  await enqueueMessages(deps, 'reminder', round, recipients);
  await deps.models.ReminderRound.updateOne({ campaign: campaignId, round }, { $set: { enqueuedAt: deps.now(), recipients: recipients.length } });
  await noteChange(deps.models, 'rounds', [campaignId]);
  return recipients.length;
}

/**
 * The scheduler's check: completes rounds a crash interrupted, then starts
 * the next round of every open campaign whose policy says it is due (the
 * previous round, or the invitation, `everyDays` ago, fewer than maxRounds
 * reminders so far). State lives in the database, so the schedule survives
 * restarts, and the round's unique index keeps two instances from doubling it.
 */
export async function runDueReminders(deps: ReminderDeps): Promise<number> {
  const now = deps.now();
  let started = 0;
  for (const round of await deps.models.ReminderRound.find({ enqueuedAt: { $exists: false } }).lean()) {
    await enqueueRound(deps, round.campaign, round.round);
  }
  const campaigns = await deps.models.Campaign.find({ 'reminderPolicy.enabled': true, closedAt: { $exists: false }, closesAt: { $gt: now } }).lean();
  for (const campaign of campaigns) {
    const policy = campaign.reminderPolicy!;
    const last = await deps.models.ReminderRound.findOne({ campaign: campaign._id }).sort({ round: -1 }).lean();
    if (!last || last.round >= (policy.maxRounds ?? 0)) continue;
    if (now.getTime() - last.startedAt.getTime() < (policy.everyDays ?? 7) * DAY_MS) continue;
    if ((await startReminderRound(deps, campaign._id, 'scheduler')).started) started += 1;
  }
  return started;
}

/** Runs runDueReminders every `intervalMs` until stopped. */
export function startReminderScheduler(
  deps: ReminderDeps,
  options: { intervalMs?: number; onRoundStarted?: () => void; onError?: (error: unknown) => void } = {},
) {
  let running = true;
  const tick = async () => {
    try {
      if ((await runDueReminders(deps)) > 0) options.onRoundStarted?.();
    } catch (error) {
      (options.onError ?? ((e: unknown) => console.error('Checking for due reminders failed:', e)))(error);
    }
  };
  const timer = setInterval(() => void (running && tick()), options.intervalMs ?? 60_000);
  void tick();
  return {
    stop() {
      running = false;
      clearInterval(timer);
    },
  };
}
