import fc from 'fast-check';
import { Types } from 'mongoose';
import { insertResponses, responseArbitrary, type RawItem, type RawResponse } from './evidence-data.ts';

/**
 * A campaign's worth of varied responses: `countries` × `institutionsPerCountry`
 * institutions, two respondents each, every profile dimension filled in, the
 * answers drawn by fast-check from a fixed seed (the same data every run), and
 * an approved-looking free text on every third response.
 */
export async function insertVariedCampaign(
  platform: Parameters<typeof insertResponses>[0],
  campaign: Types.ObjectId,
  options: { countries: string[]; institutionsPerCountry: number; text?: (index: number) => string },
): Promise<RawResponse[]> {
  const roles = ['head', 'vocational_teacher', 'intl_coordinator'];
  const types = ['ivet_school', 'ivet_dual'];
  const count = options.countries.length * options.institutionsPerCountry * 2;
  const seeds = fc.sample(responseArbitrary, { numRuns: count, seed: 42 });
  const institutions = options.countries.flatMap((country) => Array.from({ length: options.institutionsPerCountry }, () => ({ id: new Types.ObjectId(), country })));
  const responses = seeds.map((seed, index): RawResponse => {
    const institution = institutions[Math.floor(index / 2)]!;
    const items = seed.answers.flatMap((items) => (items ?? []) as RawItem[]).filter((i) => i.question !== 'S1_6');
    if (options.text && index % 3 === 0) items.push({ strand: 'S1', question: 'S1_6', value: options.text(index) });
    return {
      _id: new Types.ObjectId(),
      campaign,
      institution: institution.id,
      submittedAt: new Date(Date.UTC(2026, 1, 1, 0, index)),
      profile: {
        country: institution.country,
        institutionType: types[Math.floor(index / 2) % 2]!,
        role: roles[index % 3]!,
        size: index % 4 < 2 ? 'under_250' : '1000_2499',
        erasmus: index % 5 < 2 ? 'accredited' : 'none',
        location: index % 2 ? 'city' : 'rural',
      },
      items,
    };
  });
  await insertResponses(platform, responses);
  return responses;
}
