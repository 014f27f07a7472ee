import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { CONTACT_LIST, KeptValues, stampOf } from '../shared/change-stamp.ts';
import { csvHeader, csvLine, type CsvSeparator } from '../shared/csv.ts';
import { closedEarlyAt } from '../campaigns/campaign.model.ts';

export interface TimelineDeps {
  models: Models;
  now: () => Date;
}

const DAY_MS = 86_400_000;

export interface FieldworkTimeline {
  /** One entry per UTC day from the first email (or the opening) to today or the close. */
  days: Array<{ day: Date; completed: number; cumulative: number }>;
  /** The invitations (round 0) and each reminder round: how many were emailed, and how many of them completed before the next round. */
  rounds: Array<{ round: number; startedAt: Date; emailed: number; completedAfter: number }>;
  /** Every institution with a live personal link, lowest rate first. */
  institutions: Array<{ name: string; country: string; type: string; invited: number; completed: number }>;
}

/**
 * Fieldwork over time: completions per day, what each reminder round brought,
 * and the response rate of each institution. Computed from compact documents
 * only — the completion marks (invitation id, campaign, date), the
 * invitations' states, the outbox's (invitation, round) pairs and the rounds —
 * never from the responses.
 *
 * Kept per campaign in memory and read again only when the campaign's
 * completions, links or rounds, or an institution's details, changed (their
 * change stamps: four look-ups by _id, where counting them read every mark
 * and invitation on the embedded engine) or after ten minutes, so a page load does not re-read the
 * campaign's invitations and emails every time.
 */
export function fieldworkTimelines(deps: TimelineDeps) {
  const kept = new KeptValues<FieldworkTimeline>();
  return {
    async of(campaign: { _id: Types.ObjectId; opensAt: Date; closesAt: Date; closedAt?: Date | null }): Promise<FieldworkTimeline> {
      const id = campaign._id;
      const stamps = await Promise.all([
        ...(['completions', 'links', 'rounds'] as const).map((kind) => stampOf(deps.models, kind, id)),
        // The institutions' names, countries and types.
        stampOf(deps.models, 'contacts', CONTACT_LIST),
      ]);
      const now = deps.now();
      // The day changes the table's last row too.
      const signature = `${stamps.join('|')}|${Math.floor(now.getTime() / DAY_MS)}`;
      return kept.get(deps.models, String(id), signature, () => computeTimeline(deps.models, campaign, now));
    },
  };
}

async function computeTimeline(models: Models, campaign: { _id: Types.ObjectId; opensAt: Date; closesAt: Date; closedAt?: Date | null }, now: Date): Promise<FieldworkTimeline> {
  const id = campaign._id;
  const [marks, invitations, rounds, reminders] = await Promise.all([
    models.Completion.find({ campaign: id }, { at: 1 }).lean(),
    models.Invitation.find({ campaign: id }, { institution: 1, revokedAt: 1, completedAt: 1 }).lean(),
    models.ReminderRound.find({ campaign: id }, { round: 1, startedAt: 1 }).lean(),
    models.Outbox.find({ campaign: id, kind: 'reminder' }, { invitation: 1, round: 1 }).lean(),
  ]);
  // When each invitation completed: its mark, else the invitation's own date.
  const completedAt = new Map<string, Date>();
  for (const invitation of invitations) if (invitation.completedAt) completedAt.set(String(invitation._id), invitation.completedAt);
  for (const mark of marks) completedAt.set(String(mark._id), mark.at);

  const live = invitations.filter((i) => !i.revokedAt);
  const sortedRounds = [...rounds].sort((a, b) => a.round - b.round);
  const startDay = dayOf(sortedRounds[0]?.startedAt ?? campaign.opensAt);
  const end = new Date(Math.min(now.getTime(), (closedEarlyAt(campaign) ?? campaign.closesAt).getTime() - 1));
  const perDay = new Map<number, number>();
  for (const at of completedAt.values()) perDay.set(dayOf(at).getTime(), (perDay.get(dayOf(at).getTime()) ?? 0) + 1);
  const days: FieldworkTimeline['days'] = [];
  let cumulative = 0;
  const firstDay = Math.min(startDay.getTime(), ...perDay.keys());
  for (let t = firstDay; t <= Math.max(dayOf(end).getTime(), ...perDay.keys()); t += DAY_MS) {
    const completed = perDay.get(t) ?? 0;
    cumulative += completed;
    days.push({ day: new Date(t), completed, cumulative });
  }

  const emailedIn = new Map<number, string[]>();
  for (const message of reminders) emailedIn.set(message.round, [...(emailedIn.get(message.round) ?? []), String(message.invitation)]);
  const roundRows = sortedRounds.map((round, index) => {
    const until = sortedRounds[index + 1]?.startedAt ?? new Date(8.64e15);
    const emailed = round.round === 0 ? live.map((i) => String(i._id)) : (emailedIn.get(round.round) ?? []);
    const completedAfter = emailed.filter((invitation) => {
      const at = completedAt.get(invitation);
      return at !== undefined && at >= round.startedAt && at < until;
    }).length;
    return { round: round.round, startedAt: round.startedAt, emailed: emailed.length, completedAfter };
  });

  const byInstitution = new Map<string, { invited: number; completed: number }>();
  for (const invitation of live) {
    const key = String(invitation.institution);
    const cell = byInstitution.get(key) ?? { invited: 0, completed: 0 };
    cell.invited += 1;
    if (completedAt.has(String(invitation._id))) cell.completed += 1;
    byInstitution.set(key, cell);
  }
  const names = new Map(
    (await models.Institution.find({ _id: { $in: [...byInstitution.keys()] } }, { name: 1, country: 1, type: 1 }).lean()).map((i) => [String(i._id), i]),
  );
  const institutions = [...byInstitution.entries()]
    .map(([key, cell]) => {
      const institution = names.get(key);
      return { name: institution?.name ?? '(institution removed)', country: institution?.country ?? '?', type: institution?.type ?? '?', ...cell };
    })
    .sort((a, b) => a.completed / a.invited - b.completed / b.invited || a.name.localeCompare(b.name));
  return { days, rounds: roundRows, institutions };
}

function dayOf(date: Date): Date {
  return new Date(Math.floor(date.getTime() / DAY_MS) * DAY_MS);
}

/** Every institution's response rate as CSV, labels not codes. */
export function institutionRatesCsv(institutions: FieldworkTimeline['institutions'], separator: CsvSeparator = ','): string {
  return [
    csvHeader(['institution', 'country', 'institution_type', 'invited', 'completed', 'rate_percent'], separator),
    ...institutions.map((i) => csvLine([i.name, countryLabel(i.country), institutionTypeLabel(i.type), i.invited, i.completed, ((i.completed / i.invited) * 100).toFixed(1)], separator)),
  ].join('');
}
