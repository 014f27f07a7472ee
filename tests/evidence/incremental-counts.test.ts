import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Thresholds } from '../../server/evidence/disclosure.ts';
import { decideFromCounts } from '../../server/evidence/evidence-decision.ts';
import { DIMENSION_NAMES, type EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import type { EvidenceRecord } from '../../server/evidence/evidence-record.ts';
import { EvidenceStore, type CampaignCounts } from '../../server/evidence/evidence-store.ts';
import { countResponses, RESPONSES, viewTables } from '../../server/evidence/evidence-tally.ts';
import { answerSides, buildTables, buildTablesFrom, disclosureUnits } from '../../server/evidence/indicator.service.ts';
import { ACCREDITED_STATUSES, defineIndicators } from '../../server/evidence/indicators.ts';
import { catalogue, PROFILE_VALUES, responseArbitrary, type ResponseSeed } from './evidence-data.ts';

/**
 * The in-memory counts, kept up to date record by record (evidence-store.ts),
 * against a count from scratch of the records that stand at the end
 * (evidence-tally.ts countResponses): every table of every view, disclosure
 * decision included, must be the same, whatever order submissions, new
 * revisions and deletions came in.
 */

const set = defineIndicators(catalogue);
// Low thresholds, so that a few dozen responses have published and hidden cells.
const thresholds: Thresholds = { minInstitutions: 2, minRespondents: 3 };
const spec = { catalogue, ratios: set.ratios, indicatorsOf: set.indicatorsOf, institutionCap: thresholds.minInstitutions, accredited: ACCREDITED_STATUSES };
const INSTITUTIONS = ['i0', 'i1', 'i2', 'i3', 'i4'];

/** One step: a response to invitation `invitation` (a new one, or the next revision of an earlier one), or its deletion. */
const stepArbitrary = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('submit' as const), invitation: fc.integer({ min: 0, max: 11 }), seed: responseArbitrary }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), invitation: fc.integer({ min: 0, max: 11 }) }) },
  // A reviewer's page between two changes: the next decision is taken from this one (evidence-decision.ts).
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('page' as const) }) },
);

type Step = typeof stepArbitrary extends fc.Arbitrary<infer T> ? T : never;

function recordOf(invitation: number, revision: number, seed: ResponseSeed, step: number): EvidenceRecord {
  const profile: Record<string, string> = {};
  for (const [d, v] of Object.entries(seed.profile)) if (v) profile[d] = v;
  return {
    id: `inv${invitation}`,
    campaign: 'wave',
    // An invitation belongs to one institution; several invitations share one, so S4 is answered by more than one respondent.
    institution: INSTITUTIONS[invitation % INSTITUTIONS.length]!,
    revision,
    // Later steps are later in time, with ties between revisions of different invitations: the id decides those.
    submittedAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(step / 2) * 60_000),
    profile,
    items: seed.answers.flatMap((items) => (items ?? []) as EvidenceRecord['items']),
  };
}

const views: EvidenceFilter[] = [
  { campaigns: ['wave'], where: {}, breakdown: [] },
  ...DIMENSION_NAMES.map((d): EvidenceFilter => ({ campaigns: ['wave'], where: {}, breakdown: [d] })),
  { campaigns: ['wave'], where: {}, breakdown: ['country', 'role'] },
  { campaigns: ['wave'], where: { country: [PROFILE_VALUES.country![0]!] }, breakdown: ['role'] },
  { campaigns: ['wave'], where: { role: ['head'], erasmus: ['accredited'] }, breakdown: ['size'] },
];

/** Tables as text, sums rounded: taking a part out and putting it back may leave a rounding trace in the last bits. */
const text = (value: unknown) => JSON.stringify(value, (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v));

/**
 * Plays the steps on kept counts (taking a decision at each page), then
 * compares every view with a count from scratch of the records that stand.
 * `profileOf` replaces a response's profile (to keep every response in a few groups).
 */
async function keptMatchesScratch(steps: Step[], profileOf: (seed: ResponseSeed) => ResponseSeed['profile'] = (seed) => seed.profile) {
  const store = new EvidenceStore(spec, viewTables());
  const standing = new Map<number, EvidenceRecord>();
  const revisions = new Map<number, number>();
  steps.forEach((step, index) => {
    if (step.kind === 'page') {
      decideFromCounts(store.scope(['wave']), disclosureUnits(catalogue, set), thresholds, { sidesOf: (question, keys) => answerSides(catalogue, set, question, keys) });
      return;
    }
    if (step.kind === 'delete') {
      store.remove(`inv${step.invitation}`);
      standing.delete(step.invitation);
      return;
    }
    const revision = (revisions.get(step.invitation) ?? 0) + 1;
    revisions.set(step.invitation, revision);
    const record = recordOf(step.invitation, revision, { ...step.seed, profile: profileOf(step.seed) }, index);
    store.apply(record);
    standing.set(step.invitation, record);
  });
  // Applying a record again changes nothing.
  const [again] = standing.values();
  if (again) store.apply(again);
  if (standing.size === 0) return;

  await expectScratchTables(store, [...standing.values()]);
}

/** Every view of the kept counts, disclosure included, is the view a count from scratch of `standing` gives. */
async function expectScratchTables(store: EvidenceStore, standing: EvidenceRecord[]) {
  const tallies = await countResponses(
    standing.map((r) => ({ _id: r.id, institution: r.institution, submittedAt: r.submittedAt, profile: r.profile, items: r.items })),
    spec,
  );
  const counts = store.scope(['wave']);
  const decision = decideFromCounts(counts, disclosureUnits(catalogue, set), thresholds, { sidesOf: (question, keys) => answerSides(catalogue, set, question, keys) });
  for (const view of views) {
    const fromScratch = buildTables(catalogue, set, tallies, view, thresholds);
    const kept = buildTablesFrom(catalogue, set, decision, view, thresholds);
    // Compared as text; on a difference, the first place they part is what the message shows.
    const [a, b] = [text(kept), text(fromScratch)];
    const at = [...a].findIndex((ch, i) => ch !== b[i]);
    expect(a === b ? '' : `${JSON.stringify(view)} at ${at}: kept …${a.slice(at - 150, at + 80)}… from scratch …${b.slice(at - 150, at + 80)}…`).toBe('');
  }
}

/** Two complete profiles: after the first responses no group appears or goes, so each decision is taken from the one before. */
const SETTLED_PROFILES = [
  { country: 'AT', institutionType: 'ivet_school', role: 'head', size: 'under_250', erasmus: 'accredited', location: 'city' },
  { country: 'AT', institutionType: 'ivet_school', role: 'vocational_teacher', size: 'under_250', erasmus: 'accredited', location: 'city' },
];

describe('counts kept up to date record by record', () => {
  it('give exactly the tables a count from scratch gives, for every view, disclosure included, whatever decisions were taken on the way', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 30 }), (steps) => keptMatchesScratch(steps)),
      { numRuns: 25, seed: 20261201 },
    );
  });

  it('a decision taken from the last one, as responses arrive in groups that already exist, is the decision from scratch', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 10, maxLength: 40 }), (steps) => keptMatchesScratch(steps, (seed) => SETTLED_PROFILES[seed.institution % 2]!)),
      { numRuns: 15, seed: 20261202 },
    );
  });

  it('an institution whose responses all left a group no longer counts there, and a full list takes in the next institution', () => {
    // institutionCap is 2: a group's list of institutions per population holds two at most.
    const store = new EvidenceStore(spec, viewTables());
    const [seed] = fc.sample(responseArbitrary, { numRuns: 1, seed: 5 });
    const at = (invitation: number, institution: string, country: string, revision = 1): EvidenceRecord => ({
      ...recordOf(invitation, revision, { ...seed!, profile: { ...seed!.profile, country } }, invitation),
      institution,
    });
    store.apply(at(0, 'i0', 'AT'));
    store.apply(at(1, 'i1', 'AT'));
    store.apply(at(2, 'i1', 'AT'));
    store.apply(at(3, 'i2', 'AT'));
    const counts = store.scope(['wave']);
    const institutionsIn = (country: string) => {
      counts.settleInstitutions();
      const cell = counts.table(['country'])!.cells.get(country)!;
      return [...counts.tally(cell).populations.get(RESPONSES)!.institutions].sort();
    };
    expect(institutionsIn('AT')).toEqual(['i0', 'i1']);
    // i0's only response moves to DE: i0 leaves AT's list, and i2 (never listed: the list was full) comes in.
    store.apply(at(0, 'i0', 'DE', 2));
    expect(institutionsIn('AT')).toEqual(['i1', 'i2']);
    // One of i1's two responses goes: i1 still answers in AT.
    store.remove('inv1');
    expect(institutionsIn('AT')).toEqual(['i1', 'i2']);
    store.remove('inv2');
    expect(institutionsIn('AT')).toEqual(['i2']);
  });

  it('when every institution listed in a full group leaves it at once, the list takes in as many others of that group as it holds, never one of another group, and the tables are those from scratch', async () => {
    // institutionCap is 2. AT's list is full with i0 and i1; records of other groups lie between theirs and those of i2 and i3,
    // the only other institutions in AT, so the list must be filled from AT's records further on, and only from those.
    const store = new EvidenceStore(spec, viewTables());
    const [seed] = fc.sample(responseArbitrary, { numRuns: 1, seed: 5 });
    const standing = new Map<string, EvidenceRecord>();
    const put = (invitation: number, institution: string, country: string, revision = 1) => {
      const record = { ...recordOf(invitation, revision, { ...seed!, profile: { ...seed!.profile, country } }, invitation), institution };
      store.apply(record);
      standing.set(record.id, record);
    };
    put(0, 'i0', 'AT');
    put(1, 'i1', 'AT');
    for (let k = 0; k < 6; k++) put(10 + k, `other${k}`, k % 2 === 0 ? 'DE' : 'FR');
    put(2, 'i2', 'AT');
    put(3, 'i3', 'AT');
    put(4, 'i3', 'AT');
    const counts = store.scope(['wave']);
    const institutionsIn = (country: string) => {
      counts.settleInstitutions();
      return [...counts.tally(counts.table(['country'])!.cells.get(country)!).populations.get(RESPONSES)!.institutions].sort();
    };
    expect(institutionsIn('AT')).toEqual(['i0', 'i1']);
    put(0, 'i0', 'DE', 2);
    put(1, 'i1', 'FR', 2);
    expect(institutionsIn('AT')).toEqual(['i2', 'i3']);
    await expectScratchTables(store, [...standing.values()]);
    // Fewer institutions than the list holds: it keeps them all.
    store.remove('inv2');
    standing.delete('inv2');
    expect(institutionsIn('AT')).toEqual(['i3']);
    await expectScratchTables(store, [...standing.values()]);
  });

  it("a group's populations that list the same institutions share one set of them, and each set is the group's own list", () => {
    const store = new EvidenceStore(spec, viewTables());
    const seeds = fc.sample(responseArbitrary, { numRuns: 6, seed: 11 });
    seeds.forEach((seed, i) => store.apply({ ...recordOf(i, 1, seed, i), institution: INSTITUTIONS[i % 3]! }));
    const counts = store.scope(['wave']);
    counts.settleInstitutions();
    const overall = counts.table([])!.cells.values().next().value!;
    const populations = [...counts.tally(overall).populations.values()];
    const sets = new Set(populations.map((p) => p.institutions));
    // Not vacuous: many populations, fewer sets (institutionCap 2: most lists are the first two institutions).
    expect(populations.length).toBeGreaterThan(10);
    expect(sets.size).toBeLessThan(populations.length / 3);
    // Each is still its population's list (the tables from scratch check every view: see the properties above).
    expect([...counts.tally(overall).populations.get(RESPONSES)!.institutions].sort()).toEqual(['i0', 'i1']);
    for (const p of populations) expect(p.institutions.size).toBeGreaterThan(0);
  });

  it('keeps the tallies of the cells shown last up to a weight, and a tally let go is made again the same', () => {
    const most = 600;
    const store = new EvidenceStore({ ...spec, tallyWeightKept: most }, viewTables());
    fc.sample(responseArbitrary, { numRuns: 12, seed: 23 }).forEach((seed, i) => store.apply(recordOf(i, 1, seed, i)));
    const counts = store.scope(['wave']);
    const cells = counts.tables.flatMap((table) => [...table.cells.values()]);
    const textOf = (tally: unknown) => JSON.stringify(tally, (_, v: unknown) => (v instanceof Map ? [...v] : v instanceof Set ? [...v].sort() : v));
    const shown = cells.map((cell) => textOf(counts.tally(cell)));
    expect(shown[0]!.length).toBeGreaterThan(1000);
    // Not vacuous: the tallies of every cell weigh far more than is kept.
    expect(cells.length).toBeGreaterThan(40);
    expect(counts.talliesKept.weight).toBeLessThanOrEqual(most);
    expect(counts.talliesKept.cells).toBeLessThan(cells.length / 4);
    // Every cell again, in the same order, so that each was let go since: the same tallies.
    cells.forEach((cell, i) => expect(textOf(counts.tally(cell))).toBe(shown[i]));
    expect(counts.talliesKept.weight).toBeLessThanOrEqual(most);
  });

  it("an institution whose S4 answers move to its newer response in the same group still counts there for S4", () => {
    // S4 counts once per institution, from its latest response that answered it: the older one's S4 part leaves the group,
    // and the institution must stay in S4's list there through the newer one.
    const store = new EvidenceStore(spec, viewTables());
    const at = (invitation: number, institution: string, value: number): EvidenceRecord => ({
      id: `inv${invitation}`,
      campaign: 'wave',
      institution,
      revision: 1,
      submittedAt: new Date(Date.UTC(2026, 0, 1, 0, invitation)),
      profile: { country: 'AT' },
      items: [{ strand: 'S4', question: 'S4_5', value }],
    });
    const counts = store.scope(['wave']);
    const institutionsIn = (population: string) => {
      counts.settleInstitutions();
      const cell = counts.table(['country'])!.cells.get('AT')!;
      return [...counts.tally(cell).populations.get(population)!.institutions].sort();
    };
    // A list that is not full (a full one that loses an institution is rebuilt from every record).
    store.apply(at(0, 'i0', 10));
    expect(institutionsIn('S4_5')).toEqual(['i0']);
    store.apply(at(1, 'i0', 30));
    expect(institutionsIn('S4_5')).toEqual(['i0']);
    store.apply(at(2, 'i1', 20));
    expect(institutionsIn('S4_5')).toEqual(['i0', 'i1']);
    expect(counts.tally(counts.table(['country'])!.cells.get('AT')!).questions.get('S4_5')!.sum).toBe(50);
  });

  it('a group counts exactly past what its narrowest counters hold: 300 responses, 300 institutions come and gone, sums that are not whole', async () => {
    // A cell starts with 8-bit counters, 16-bit integer sums and one byte of institution bits a population (evidence-store.ts).
    const store = new EvidenceStore(spec, viewTables());
    const seeds = fc.sample(responseArbitrary, { numRuns: 300, seed: 7 });
    const profile = SETTLED_PROFILES[0]!;
    const at = (id: string, institution: string, i: number): EvidenceRecord => ({ ...recordOf(0, 1, { ...seeds[i]!, profile }, i), id, institution });
    const counts = store.scope(['wave']);
    // One response stays, so the group stays; each of 300 institutions is listed there, then leaves.
    const standing = [at('anchor', 'anchor', 0)];
    store.apply(standing[0]!);
    for (let k = 0; k < 300; k++) {
      store.apply(at(`passing${k}`, `passing${k}`, k));
      counts.settleInstitutions();
      store.remove(`passing${k}`);
    }
    for (let k = 0; k < 300; k++) {
      const record = at(`stays${k}`, INSTITUTIONS[k % INSTITUTIONS.length]!, k);
      // A number answer that is not whole turns the group's sums into floats.
      if (k === 150) record.items = record.items.map((item) => (typeof item.value === 'number' ? { ...item, value: item.value + 0.5 } : item));
      // Whole amounts are kept in 7-bit groups: one that takes three and one below 0.
      if (k === 100 || k === 200) record.items = record.items.map((item) => (typeof item.value === 'number' ? { ...item, value: k === 100 ? 123_456 + item.value : -70 - item.value } : item));
      store.apply(record);
      standing.push(record);
    }
    await expectScratchTables(store, standing);
  });

  it('the institutions behind every population stay exact while revisions move responses between institutions, past eight and sixteen institutions a group', async () => {
    // A group's lists are bits, one per institution the group names (evidence-store.ts Cell.listed): with a cap of 12 a list
    // holds more institutions than one byte has bits, and institutions that leave free bits others take later.
    const cap = 12;
    const wide = { ...spec, institutionCap: cap };
    const seeds = fc.sample(responseArbitrary, { numRuns: 40, seed: 13 });
    const changeArbitrary = fc.record({ invitation: fc.integer({ min: 0, max: 29 }), institution: fc.integer({ min: 0, max: 39 }), seed: fc.nat({ max: seeds.length - 1 }), remove: fc.boolean(), settle: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(changeArbitrary, { minLength: 40, maxLength: 120 }), async (changes) => {
        const store = new EvidenceStore(wide, viewTables());
        const counts = store.scope(['wave']);
        const standing = new Map<number, EvidenceRecord>();
        const revisions = new Map<number, number>();
        changes.forEach((change, step) => {
          if (change.remove && standing.has(change.invitation)) {
            store.remove(`inv${change.invitation}`);
            standing.delete(change.invitation);
          } else {
            const revision = (revisions.get(change.invitation) ?? 0) + 1;
            revisions.set(change.invitation, revision);
            // Each revision may name another institution than the one before: the response moves between them.
            const record = { ...recordOf(change.invitation, revision, { ...seeds[change.seed]!, profile: SETTLED_PROFILES[change.invitation % 2]! }, step), institution: `j${change.institution}` };
            store.apply(record);
            standing.set(change.invitation, record);
          }
          if (change.settle) counts.settleInstitutions();
        });
        counts.settleInstitutions();
        // Every institution of every population, uncapped, from scratch: each kept list holds min(cap, all) of them and no other.
        const all = await countResponses(
          [...standing.values()].map((r) => ({ _id: r.id, institution: r.institution, submittedAt: r.submittedAt, profile: r.profile, items: r.items })),
          { ...spec, institutionCap: 1000 },
        );
        const present = new Set([...standing.values()].map((r) => r.institution));
        const differencesIn = (counts: CampaignCounts) => {
          const differences: string[] = [];
          for (const { dimensions, groups } of all.groupings.values()) {
            const table = counts.table(dimensions)!;
            for (const [key, group] of groups) {
              const cell = table.cells.get(key);
              const kept = cell ? counts.tally(cell).populations : new Map();
              for (const [population, { institutions }] of group.populations) {
                const listed = [...(kept.get(population)?.institutions ?? [])];
                if (listed.length !== Math.min(cap, institutions.size) || listed.some((i) => !institutions.has(i))) differences.push(`${key} ${population}: kept ${listed.sort()} of ${[...institutions].sort()}`);
              }
            }
          }
          const overall = counts.table([])!.cells.get('');
          const listed = overall ? [...counts.tally(overall).populations.get(RESPONSES)!.institutions] : [];
          if (listed.length !== Math.min(cap, present.size) || listed.some((i) => !present.has(i))) differences.push(`overall: kept ${listed.sort()} of ${[...present].sort()}`);
          return differences.slice(0, 3);
        };
        expect(differencesIn(counts)).toEqual([]);
        // The same from an image of the counts (a snapshot's): the lists' widths go with them.
        const restored = new EvidenceStore(wide, viewTables());
        expect(restored.restore(store.image()!)).not.toBeNull();
        expect(differencesIn(restored.scope(['wave']))).toEqual([]);
      }),
      { numRuns: 12, seed: 20261204 },
    );
  });

  it('sums past 16 bits, above and below 0, count and leave exactly', async () => {
    // A cell's sums start as 16-bit integers (evidence-store.ts summed): these pass 32,767 and −32,768 one way and back.
    const store = new EvidenceStore(spec, viewTables());
    const numbers = new Set(catalogue.questions.filter((q) => q.kind === 'number').map((q) => q.name));
    const isNumber = (item: { question: string; value: unknown }) => numbers.has(item.question) && typeof item.value === 'number';
    const seeds = fc.sample(responseArbitrary, { numRuns: 200, seed: 17 }).filter((seed) => seed.answers.some((items) => items?.some(isNumber)));
    const withNumbers = (seed: ResponseSeed, add: number): ResponseSeed => ({
      ...seed,
      profile: SETTLED_PROFILES[0]!,
      answers: seed.answers.map((items) => items?.map((item) => (isNumber(item) ? { ...item, value: (item.value as number) + add } : item)) ?? null) as ResponseSeed['answers'],
    });
    const standing = new Map<number, EvidenceRecord>();
    const put = (invitation: number, revision: number, add: number, step: number) => {
      const record = recordOf(invitation, revision, withNumbers(seeds[invitation]!, add), step);
      store.apply(record);
      standing.set(invitation, record);
    };
    for (let i = 0; i < 6; i++) put(i, 1, 12_000, i);
    await expectScratchTables(store, [...standing.values()]);
    for (let i = 0; i < 6; i++) put(i, 2, -15_000, 10 + i);
    await expectScratchTables(store, [...standing.values()]);
    store.remove('inv0');
    standing.delete(0);
    await expectScratchTables(store, [...standing.values()]);
  });

  it('a record whose few answers lie far apart among the counters (steps past one byte) counts and leaves exactly', async () => {
    // Dense responses first, so that the layout holds hundreds of counters; then sparse ones, a few
    // answers each, whose places are kept as steps from one to the next (evidence-store.ts putSteps).
    const dense = fc.sample(responseArbitrary, { numRuns: 40, seed: 11 });
    const sparseArbitrary = fc.record({ seed: responseArbitrary, keep: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), again: fc.array(fc.nat(), { maxLength: 3 }) });
    const sparse = (seed: ResponseSeed, keep: number[]): ResponseSeed => {
      const answered = seed.answers.map((items, q) => (items ? q : -1)).filter((q) => q >= 0);
      const kept = new Set(keep.map((k) => answered[k % answered.length]));
      return { ...seed, answers: seed.answers.map((items, q) => (kept.has(q) ? items : null)) as ResponseSeed['answers'] };
    };
    await fc.assert(
      fc.asyncProperty(fc.array(sparseArbitrary, { minLength: 1, maxLength: 8 }), async (sparseOnes) => {
        const store = new EvidenceStore(spec, viewTables());
        const standing = new Map<string, EvidenceRecord>();
        const put = (record: EvidenceRecord) => {
          store.apply(record);
          standing.set(record.id, record);
        };
        dense.forEach((seed, i) => put(recordOf(100 + i, 1, seed, i)));
        sparseOnes.forEach(({ seed, keep, again }, i) => {
          put(recordOf(i, 1, sparse(seed, keep), 100 + i));
          // A new revision takes the sparse part out again (its steps read back to the same places).
          if (again.length > 0) put(recordOf(i, 2, sparse(seed, again), 200 + i));
        });
        // A dense response leaves, and one becomes sparse: taken out, put in.
        store.remove('inv100');
        standing.delete('inv100');
        put(recordOf(101, 2, sparse(dense[1]!, [7]), 300));
        await expectScratchTables(store, [...standing.values()]);
      }),
      // A run counts ~50 records from scratch for every view: seconds each, so a failure is reported as found, not shrunk.
      { numRuns: 4, seed: 20261203, endOnFailure: true },
    );
  });

  it('a revision that moves a response to another profile leaves no trace in its old groups', () => {
    const store = new EvidenceStore(spec, viewTables());
    const [seed] = fc.sample(responseArbitrary, { numRuns: 1, seed: 3 });
    const first = recordOf(0, 1, { ...seed!, profile: { ...seed!.profile, country: 'AT' } }, 0);
    store.apply(first);
    store.apply({ ...first, revision: 2, profile: { ...first.profile, country: 'DE' } });
    const byCountry = store.scope(['wave']).table(['country'])!;
    expect([...byCountry.cells.keys()]).toEqual(['DE']);
    // An older revision arriving late (a load that read it before) does not take the newer one back.
    store.apply(first);
    expect([...byCountry.cells.keys()]).toEqual(['DE']);
  });
});
