import { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import { campaignLinks } from '../invitations/link-population.ts';
import { formatDay, formatLastDay } from '../shared/dates.ts';
import type { Language } from '../shared/languages.ts';
import { localText, reportText } from './report-text.ts';
import type { Thresholds } from './disclosure.ts';
import { DIMENSION_NAMES, DIMENSIONS, type Dimension, type EvidenceFilter } from './evidence-filter.ts';
import { choiceLabel, type QuestionCatalogue } from './question-catalogue.ts';

/** Filter dimensions an invitation can be counted by: those of the institution record. Role, size, status and location are only known from answers. */
const INSTITUTION_FIELDS = { country: 'country', institutionType: 'type' } as const;

export interface InvitationCount {
  invitations: number;
  institutions: number;
}

/**
 * The invitations of the filter's campaigns (not revoked) and their
 * institutions, restricted to the filter's country and institution type as
 * the institution records give them. Null when the filter uses a dimension
 * only answers know (role, size…): then no invitation count matches it.
 * The links are counted from what campaignLinks keeps (read again only when
 * they changed); a filter by country or type reads the matching
 * institutions' ids.
 */
export async function invitationCount(models: Pick<Models, 'Invitation' | 'Institution' | 'Campaign' | 'ChangeStamp' | 'LinkChange' | 'LinkCopy'>, filter: Pick<EvidenceFilter, 'campaigns' | 'where'>): Promise<InvitationCount | null> {
  const dims = DIMENSION_NAMES.filter((d) => filter.where[d]?.length);
  if (dims.some((d) => !(d in INSTITUTION_FIELDS))) return null;
  const campaigns = filter.campaigns.length ? filter.campaigns : (await models.Campaign.find({}, { _id: 1 }).lean()).map((c) => String(c._id));
  const live = new Map<string, number>();
  for (const campaign of campaigns) {
    for (const [institution, links] of (await campaignLinks(models, campaign)).liveByInstitution) live.set(institution, (live.get(institution) ?? 0) + links);
  }
  let matching: Set<string> | undefined;
  if (dims.length > 0) {
    const match = Object.fromEntries(dims.map((d) => [INSTITUTION_FIELDS[d as keyof typeof INSTITUTION_FIELDS], filter.where[d]![0]]));
    matching = new Set((await models.Institution.find(match, { _id: 1 }).lean<Array<{ _id: Types.ObjectId }>>()).map((i) => String(i._id)));
  }
  let invitations = 0;
  let institutions = 0;
  for (const [institution, links] of live) {
    if (matching && !matching.has(institution)) continue;
    invitations += links;
    institutions += 1;
  }
  return { invitations, institutions };
}

export interface ReportScope {
  campaign: string;
  fieldwork: string;
  filter: string;
  breakdown: string;
  thresholds: string;
  /** Responses in the view, or "a suppressed number of". */
  responses: string;
  invitations: string;
  institutions: string;
  responseRate: string;
  /** False when the filter uses a dimension invitations cannot be counted by: then only the responses are shown. */
  invitationsKnown: boolean;
  /** What the response rate is, in words: which responses over which invitations, or why there is none. */
  rateBasis: string;
  generatedAt: string;
}

/**
 * What a page, a printed report or an export is of, in words: the campaign,
 * its fieldwork, the filter and breakdown, the thresholds and the counts
 * behind the figures. Every printed or downloaded copy carries it.
 */
export async function reportScope(
  deps: { models: Pick<Models, 'Campaign' | 'Invitation' | 'Institution' | 'ChangeStamp' | 'LinkChange' | 'LinkCopy'>; catalogue: QuestionCatalogue; now: () => Date },
  filter: EvidenceFilter,
  responses: number | null,
  thresholds: Thresholds,
  /** The report's language (every other page, and the exports, are in English). */
  language: Language = 'en',
): Promise<ReportScope> {
  const campaign = filter.campaigns[0] ? await deps.models.Campaign.findOne({ _id: filter.campaigns[0] }, { name: 1, opensAt: 1, closesAt: 1 }).lean() : null;
  const invited = await invitationCount(deps.models, filter);
  const t = reportText(language).scope;
  const rate = invited && invited.invitations > 0 && responses !== null ? (100 * responses) / invited.invitations : null;
  return {
    campaign: campaign?.name ?? t.all,
    fieldwork: campaign?.opensAt && campaign.closesAt ? `${formatDay(campaign.opensAt, language)} ${t.to} ${formatLastDay(campaign.closesAt, language)}` : '',
    filter: filterText(deps.catalogue, filter, language),
    breakdown: filter.breakdown.map((d) => dimensionLabel(d, language)).join(' × ') || t.overallOnly,
    thresholds: t.thresholds(thresholds),
    responses: responses === null ? t.suppressedNumber : String(responses),
    invitations: invited ? String(invited.invitations) : t.unknown,
    institutions: invited ? String(invited.institutions) : t.unknown,
    responseRate: !invited ? t.unknown : rate === null ? t.notKnown : language === 'en' ? `${rate.toFixed(1)}%` : `${rate.toFixed(1).replace('.', ',')}\u00a0%`,
    invitationsKnown: invited !== null,
    rateBasis: rateBasis(deps.catalogue, filter, language),
    generatedAt: formatDay(deps.now(), language),
  };
}

function dimensionLabel(dimension: Dimension, language: Language): string {
  return language === 'en' ? DIMENSIONS[dimension].label : reportText(language).dimensions[dimension];
}

/**
 * What the response rate of a filter is based on. Invitations are known by
 * their institution record's country and type only; a response counts by
 * what its respondent answered (pre-filled from that record, and correctable),
 * so under a country or type filter the two sides are matched by different
 * sources, and under any other filter there is no matching count of invitations.
 */
function rateBasis(catalogue: QuestionCatalogue, filter: Pick<EvidenceFilter, 'where'>, language: Language): string {
  const t = reportText(language).scope;
  const dims = DIMENSION_NAMES.filter((d) => filter.where[d]?.length);
  const answerOnly = dims.filter((d) => !(d in INSTITUTION_FIELDS));
  const names = (list: readonly Dimension[]) => list.map((d) => (language === 'de' ? dimensionLabel(d, language) : dimensionLabel(d, language).toLowerCase())).join(` ${t.and} `);
  if (answerOnly.length > 0) return t.basisUnknown(names(answerOnly), answerOnly.length > 1);
  if (dims.length === 0) return t.basisAll;
  const where = { where: Object.fromEntries(dims.map((d) => [d, filter.where[d]])) };
  return t.basisFilter(filterText(catalogue, where, language), names(dims));
}

export function filterText(catalogue: QuestionCatalogue, filter: Pick<EvidenceFilter, 'where'>, language: Language = 'en'): string {
  const label = (d: Dimension, value: string) => {
    const question = catalogue.byName.get(DIMENSIONS[d].question);
    return language === 'en' ? choiceLabel(question, value) : (localText(question?.choices.find((c) => String(c.value) === value)?.label, language) ?? value);
  };
  return (
    DIMENSION_NAMES.filter((d) => filter.where[d]?.length)
      .map((d) => `${dimensionLabel(d, language)}: ${label(d, filter.where[d]![0]!)}`)
      .join('; ') || reportText(language).scope.everyone
  );
}

/** The scope as label/value lines: the header rows of an export. */
export function scopeLines(scope: ReportScope): Array<[string, string]> {
  return [
    ['Campaign', scope.campaign],
    ['Fieldwork', scope.fieldwork],
    ['Filter', scope.filter],
    ['Breakdown', scope.breakdown],
    ['Disclosure thresholds', scope.thresholds],
    ['Responses', scope.responses],
    ['Invitations', scope.invitations],
    ['Institutions invited', scope.institutions],
    ['Response rate', scope.responseRate],
    ['Response rate based on', scope.rateBasis],
    ['Generated', scope.generatedAt],
  ];
}
