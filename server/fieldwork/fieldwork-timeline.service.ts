import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { countryLabel, institutionTypeLabel } from '../institutions/institution-codes.ts';
import { KeptValues, stampOf } from '../shared/change-stamp.ts';
import { campaignLinksState, contactListWithStamp, type CampaignLinksState } from '../campaigns/audience-state.ts';
import { linkProgress } from './link-progress.ts';
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
 * and from what the process keeps, never from the responses:
 * - when each link was answered comes from the links' progress, followed
 *   through the campaign's progress journal (link-progress.ts, which the
 *   fieldwork page shares), so a submission costs a look-up of its entry by
 *   _id, not a read of every completion mark and invitation;
 * - the live links and their institutions from the campaign's compact copy of
 *   its links, kept until its "links" stamp moves;
 * - the rounds and which links each reminder round emailed, kept until the
 *   "rounds" stamp moves;
 * - names, countries and types from the contact list the process keeps.
 * The figures are kept until one of these moves, or the day changes.
 */
export function fieldworkTimelines(deps: TimelineDeps) {
  const kept = new KeptValues<FieldworkTimeline>();
  const keptRounds = new KeptValues<RoundsPart>();
  const keptLayouts = new KeptValues<InstitutionLayout>();
  return {
    async of(campaign: { _id: Types.ObjectId; opensAt: Date; closesAt: Date; closedAt?: Date | null }): Promise<FieldworkTimeline> {
      const { models } = deps;
      const id = campaign._id;
      // The stamps before what they guard: a change written meanwhile moves a stamp this load did not see.
      const [links, rounds, progress, { state: contactList, institutionsStamp }] = await Promise.all([
        stampOf(models, 'links', id),
        stampOf(models, 'rounds', id),
        linkProgress(models, id),
        contactListWithStamp(models),
      ]);
      const now = deps.now();
      // The day changes the table's last row too.
      // Only a completion moves the figures, not a first opening or first answers; of the contact list, only the institutions.
      const signature = `${links}|${rounds}|${progress.completedVersion}|${institutionsStamp}|${Math.floor(now.getTime() / DAY_MS)}`;
      return kept.get(models, String(id), signature, async () => {
        const [layout, roundsPart] = await Promise.all([
          keptLayouts.get(models, String(id), `${links}|${institutionsStamp}`, async () => institutionLayout((await campaignLinksState(models, id)).live, contactList.institutions)),
          keptRounds.get(models, String(id), rounds, () => readRounds(models, id)),
        ]);
        return timelineOf(campaign, now, { layout, completedAt: progress.completedAt, rounds: roundsPart });
      });
    },
  };
}

/** A campaign's rounds, and the links each reminder round emailed. */
interface RoundsPart {
  rounds: Array<{ round: number; startedAt: Date }>;
  emailedIn: Map<number, string[]>;
}

async function readRounds(models: Models, id: Types.ObjectId): Promise<RoundsPart> {
  const [rounds, reminders] = await Promise.all([
    models.ReminderRound.find({ campaign: id }, { round: 1, startedAt: 1 }).lean(),
    models.Outbox.find({ campaign: id, kind: 'reminder' }, { invitation: 1, round: 1 }).lean(),
  ]);
  const emailedIn = new Map<number, string[]>();
  for (const message of reminders) emailedIn.set(message.round, [...(emailedIn.get(message.round) ?? []), String(message.invitation)]);
  return { rounds: [...rounds].sort((a, b) => a.round - b.round), emailedIn };
}

type InstitutionEntry = { name: string; country: string; type: string };

/**
 * The live links and their institutions, each institution ranked by name
 * once: made again only when the links or the
 * contact list change, so a completion costs counting and a numeric sort,
 * not a sort of every institution by name (at 50,000 links and institutions,
 * ~0.1 s after every submission).
 */
interface InstitutionLayout {
  ids: string[];
  /** Each link's institution, an index into `institutions`, which are in the order the links first name them. */
  institutionOf: Int32Array;
  institutions: InstitutionEntry[];
  nameRank: Int32Array;
}

function institutionLayout(live: CampaignLinksState['live'], known: ReadonlyMap<string, InstitutionEntry>): InstitutionLayout {
  const index = new Map<string, number>();
  const institutions: InstitutionEntry[] = [];
  const institutionOf = new Int32Array(live.length);
  live.forEach((link, i) => {
    let at = index.get(link.institutionId);
    if (at === undefined) {
      const institution = known.get(link.institutionId);
      at = institutions.push({ name: institution?.name ?? '(institution removed)', country: institution?.country ?? '?', type: institution?.type ?? '?' }) - 1;
      index.set(link.institutionId, at);
    }
    institutionOf[i] = at;
  });
  // A stable sort: equal names keep the order their links first name them in, as the rates' sort then keeps them.
  const byName = institutions.map((_, i) => i).sort((a, b) => institutions[a]!.name.localeCompare(institutions[b]!.name));
  const nameRank = new Int32Array(institutions.length);
  byName.forEach((at, i) => (nameRank[at] = i));
  return { ids: live.map((link) => link.id), institutionOf, institutions, nameRank };
}

function timelineOf(
  campaign: { opensAt: Date; closesAt: Date; closedAt?: Date | null },
  now: Date,
  parts: {
    layout: InstitutionLayout;
    completedAt: ReadonlyMap<string, number>;
    rounds: RoundsPart;
  },
): FieldworkTimeline {
  const { layout, completedAt } = parts;
  const sortedRounds = parts.rounds.rounds;
  const startDay = dayOf(sortedRounds[0]?.startedAt ?? campaign.opensAt);
  const end = new Date(Math.min(now.getTime(), (closedEarlyAt(campaign) ?? campaign.closesAt).getTime() - 1));
  const perDay = new Map<number, number>();
  for (const at of completedAt.values()) {
    const day = dayOf(new Date(at)).getTime();
    perDay.set(day, (perDay.get(day) ?? 0) + 1);
  }
  const days: FieldworkTimeline['days'] = [];
  let cumulative = 0;
  const firstDay = Math.min(startDay.getTime(), ...perDay.keys());
  for (let t = firstDay; t <= Math.max(dayOf(end).getTime(), ...perDay.keys()); t += DAY_MS) {
    const completed = perDay.get(t) ?? 0;
    cumulative += completed;
    days.push({ day: new Date(t), completed, cumulative });
  }

  const roundRows = sortedRounds.map((round, index) => {
    const until = sortedRounds[index + 1]?.startedAt.getTime() ?? Number.POSITIVE_INFINITY;
    const emailed = round.round === 0 ? layout.ids : (parts.rounds.emailedIn.get(round.round) ?? []);
    const completedAfter = emailed.filter((invitation) => {
      const at = completedAt.get(invitation);
      return at !== undefined && at >= round.startedAt.getTime() && at < until;
    }).length;
    return { round: round.round, startedAt: round.startedAt, emailed: emailed.length, completedAfter };
  });

  const invited = new Int32Array(layout.institutions.length);
  const completed = new Int32Array(layout.institutions.length);
  layout.ids.forEach((id, i) => {
    const at = layout.institutionOf[i]!;
    invited[at]! += 1;
    if (completedAt.has(id)) completed[at]! += 1;
  });
  const institutions = layout.institutions
    .map((_, at) => at)
    .sort((a, b) => completed[a]! / invited[a]! - completed[b]! / invited[b]! || layout.nameRank[a]! - layout.nameRank[b]!)
    .map((at) => ({ ...layout.institutions[at]!, invited: invited[at]!, completed: completed[at]! }));
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
