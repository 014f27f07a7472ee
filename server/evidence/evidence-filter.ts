import { Types } from 'mongoose';
import { z } from 'zod';
import { MAX_VIEW_DIMENSIONS } from './disclosure.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

/**
 * The profile dimensions every indicator is broken down by, with the profile
 * question each one is copied from (see respond.service.ts profileOf).
 */
export const DIMENSIONS = {
  country: { question: 'P1', label: 'Country' },
  institutionType: { question: 'P2', label: 'Institution type' },
  role: { question: 'P9', label: 'Role' },
  size: { question: 'P4a', label: 'Size (learners)' },
  erasmus: { question: 'P8', label: 'Erasmus+ status' },
  location: { question: 'P5', label: 'Location' },
} as const;

export type Dimension = keyof typeof DIMENSIONS;
export const DIMENSION_NAMES = Object.keys(DIMENSIONS) as Dimension[];

/** What a page or an export shows: which campaign, which respondents, broken down how. */
export interface EvidenceFilter {
  /**
   * The campaign (one wave). Pages always choose one: campaigns are never
   * pooled, since a pooled total minus one campaign would give away another
   * campaign's suppressed cells (and pooling waves counts institutions twice).
   * Empty reads every response as one group (scripts, a single-campaign set-up).
   */
  campaigns: string[];
  /** Only respondents whose profile has this value, per dimension (one value: two pooled minus one would give away the other). */
  where: Partial<Record<Dimension, string[]>>;
  /** Zero (overall only), one or two dimensions (a cross-tab). */
  breakdown: Dimension[];
}

/** A campaign id as it may reach a database filter: 24 hex digits. */
export const objectId = z.string().refine((s) => Types.ObjectId.isValid(s) && /^[0-9a-f]{24}$/i.test(s), 'not an id');
const listOf = <T extends z.ZodType>(item: T) =>
  z
    .union([item, z.array(item)])
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

/**
 * Parses a query string into a filter. Dimension values are checked against the
 * choices of the profile question, so nothing unknown reaches a database filter.
 */
export function filterSchema(catalogue: QuestionCatalogue) {
  const dimensionValues = Object.fromEntries(
    DIMENSION_NAMES.map((dimension) => {
      const codes = (catalogue.byName.get(DIMENSIONS[dimension].question)?.choices ?? []).map((c) => String(c.value));
      return [
        dimension,
        listOf(z.enum(codes as [string, ...string[]], { message: `${DIMENSIONS[dimension].label}: not one of the survey's answer codes` })).pipe(
          z.array(z.string()).max(1, `${DIMENSIONS[dimension].label}: choose one value (values are not pooled)`),
        ),
      ];
    }),
  ) as unknown as Record<Dimension, z.ZodType<string[], unknown>>;
  const dimension = z.enum(DIMENSION_NAMES as [Dimension, ...Dimension[]]);
  return z
    .object({
      campaign: listOf(objectId).pipe(z.array(z.string()).max(1, 'Campaign: choose one campaign (campaigns are not pooled; compare two on the waves page)')),
      by: z.union([dimension, z.literal('')], { message: `Break down by: not a profile dimension (use one of ${DIMENSION_NAMES.join(', ')})` }).optional(),
      cross: z.union([dimension, z.literal('')], { message: `Cross with: not a profile dimension (use one of ${DIMENSION_NAMES.join(', ')})` }).optional(),
      ...dimensionValues,
    })
    .transform((q): EvidenceFilter => {
      const where: EvidenceFilter['where'] = {};
      for (const d of DIMENSION_NAMES) {
        const values = (q as Record<string, unknown>)[d] as string[];
        if (values.length > 0) where[d] = [...new Set(values)].sort();
      }
      const breakdown = [q.by, q.cross].filter((d): d is Dimension => Boolean(d));
      return { campaigns: [...new Set(q.campaign)].sort(), where, breakdown: [...new Set(breakdown)] };
    })
    .refine((f) => new Set([...Object.keys(f.where), ...f.breakdown]).size <= MAX_VIEW_DIMENSIONS, {
      message: `Combine at most ${MAX_VIEW_DIMENSIONS} profile dimensions in filters and breakdown together (the tables protected together)`,
    });
}

/** The stable text of a filter: the cache key, and the query string of links. */
export function filterKey(filter: EvidenceFilter): string {
  return JSON.stringify([filter.campaigns, DIMENSION_NAMES.map((d) => filter.where[d] ?? []), filter.breakdown]);
}

export function filterQueryString(filter: EvidenceFilter, overrides: { by?: Dimension | ''; cross?: Dimension | '' } = {}): string {
  const params = new URLSearchParams();
  for (const id of filter.campaigns) params.append('campaign', id);
  for (const d of DIMENSION_NAMES) for (const v of filter.where[d] ?? []) params.append(d, v);
  const by = 'by' in overrides ? overrides.by : filter.breakdown[0];
  const cross = 'cross' in overrides ? overrides.cross : filter.breakdown[1];
  if (by) params.set('by', by);
  if (cross) params.set('cross', cross);
  return params.toString();
}

/** The database filter on responses for a parsed (already checked) evidence filter. */
export function responseMatch(filter: Pick<EvidenceFilter, 'campaigns' | 'where'>): Record<string, unknown> {
  const match: Record<string, unknown> = {};
  if (filter.campaigns.length > 0) match.campaign = { $in: filter.campaigns.map((id) => new Types.ObjectId(id)) };
  for (const d of DIMENSION_NAMES) {
    const values = filter.where[d];
    if (values && values.length > 0) match[`profile.${d}`] = { $in: values };
  }
  return match;
}
