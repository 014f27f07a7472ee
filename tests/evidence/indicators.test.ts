import fc from 'fast-check';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIMENSION_NAMES, type Dimension, type EvidenceFilter } from '../../server/evidence/evidence-filter.ts';
import { EvidenceService, FILTERS_KEPT, type EvidenceTables } from '../../server/evidence/indicator.service.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { catalogue, insertResponses, responseArbitrary, toResponses, type RawResponse } from './evidence-data.ts';
import { expectedDistribution, expectedIndicators, onceS4PerInstitution, type Expected } from './independent-indicators.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

const NOT_STATED = '-';
const groupKeyOf = (r: RawResponse, dimensions: Dimension[]) => dimensions.map((d) => r.profile[d] ?? NOT_STATED).join('|');

/**
 * Every published cell of the tables against the plain computation over the
 * same group of responses. Which S4 answer counts is decided over the whole
 * campaign, before any filter or breakdown: a filtered view is a slice of the
 * campaign's tables.
 */
function compareTables(tables: EvidenceTables, campaign: RawResponse[], keep: (r: RawResponse) => boolean = () => true) {
  const responses = onceS4PerInstitution(campaign).filter(keep);
  const groups = new Map<string, RawResponse[]>();
  if (tables.dimensions.length > 0) for (const r of responses) {
    const key = groupKeyOf(r, tables.dimensions);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  expect(new Set(tables.columns.map((c) => c.key))).toEqual(new Set(groups.keys()));

  const overall = expectedIndicators(responses);
  const byGroup = new Map([...groups].map(([key, rs]) => [key, expectedIndicators(rs)]));
  for (const row of tables.indicators) {
    const check = (cell: EvidenceTables['indicators'][number]['overall'], expected: Expected | undefined, where: string) => {
      expect(expected, `${row.code} is computed independently`).toBeDefined();
      const small = expected!.respondents < 1 || expected!.institutions < 1;
      if (cell.suppressed) {
        // Suppressed: too small, or the complement of another suppressed cell.
        return small ? 'primary' : 'secondary';
      }
      expect(small, `${row.code} ${where} is published only with answers behind it`).toBe(false);
      expect(cell.n, `${row.code} ${where} n`).toBe(expected!.n);
      if (expected!.value === null) expect(cell.value, `${row.code} ${where}`).toBeNull();
      else expect(cell.value, `${row.code} ${where}`).toBeCloseTo(expected!.value, 9);
      return 'shown';
    };
    const overallOutcome = check(row.overall, overall.get(row.code), 'overall');
    // Unfiltered, the overall cell is no line's member; filtered, it is the filter's cell in the campaign's table.
    if (Object.keys(tables.filter.where).length === 0) expect(overallOutcome).not.toBe('secondary');
    const outcomes = Object.entries(row.groups).map(([key, cell]) => check(cell, byGroup.get(key)!.get(row.code), key));
    if (tables.dimensions.length === 1 && Object.keys(tables.filter.where).length === 0) {
      // Unfiltered, a secondary suppression only ever accompanies exactly one primary one in the line.
      if (outcomes.includes('secondary')) expect(outcomes.filter((o) => o === 'primary').length).toBe(1);
    }
  }

  for (const question of tables.questions) {
    const check = (cell: EvidenceTables['questions'][number]['overall'], group: RawResponse[], where: string) => {
      const expected = expectedDistribution(group, question.name);
      if (cell.suppressed) return;
      expect(cell.respondents, `${question.name} ${where} respondents`).toBe(expected.respondents);
      expect(cell.validN, `${question.name} ${where} valid answers`).toBe(expected.validN);
      expect(cell.dk, `${question.name} ${where} don't know`).toBe(expected.dk);
      if (question.kind === 'scale' || question.kind === 'number') {
        if (expected.mean === null) expect(cell.mean).toBeNull();
        else expect(cell.mean, `${question.name} ${where} mean`).toBeCloseTo(expected.mean, 9);
      }
    };
    check(question.overall, responses, 'overall');
    for (const [key, cell] of Object.entries(question.groups)) check(cell, groups.get(key)!, key);
  }
}

describe('indicators against an independent computation', () => {
  it('every indicator and every distribution, overall, by each dimension and crossed, equals the plain computation over the raw responses', async () => {
    // Thresholds of one: every cell with answers behind it is published (disclosure is tested apart).
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 } });
    const dimensionPair = fc.tuple(fc.constantFrom(...DIMENSION_NAMES), fc.constantFrom(...DIMENSION_NAMES)).filter(([a, b]) => a !== b);
    await fc.assert(
      fc.asyncProperty(fc.array(responseArbitrary, { minLength: 1, maxLength: 30 }), fc.array(responseArbitrary, { maxLength: 5 }), dimensionPair, async (seeds, otherSeeds, pair) => {
        await platform.models.Response.deleteMany({});
        service.invalidate();
        const campaign = new Types.ObjectId();
        const responses = toResponses(seeds, campaign);
        // Responses of another campaign must not count.
        await insertResponses(platform, [...responses, ...toResponses(otherSeeds, new Types.ObjectId())]);

        const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
        compareTables(await service.tables(base), responses);
        for (const dimension of DIMENSION_NAMES) compareTables(await service.tables({ ...base, breakdown: [dimension] }), responses);
        compareTables(await service.tables({ ...base, breakdown: pair }), responses);

        // A filter keeps only the matching respondents: on one dimension, on two, and broken down by a third.
        const { country, role } = responses[0]!.profile;
        if (country) {
          const inCountry = (r: RawResponse) => r.profile.country === country;
          compareTables(await service.tables({ ...base, where: { country: [country] } }), responses, inCountry);
          compareTables(await service.tables({ ...base, where: { country: [country] }, breakdown: [pair[0]] }), responses, inCountry);
          if (role) {
            const both = (r: RawResponse) => inCountry(r) && r.profile.role === role;
            compareTables(await service.tables({ ...base, where: { country: [country], role: [role] } }), responses, both);
            // Filters and breakdown reach at most three dimensions together.
            const third = pair.filter((d) => d !== 'country' && d !== 'role').slice(0, 1);
            compareTables(await service.tables({ ...base, where: { country: [country], role: [role] }, breakdown: third }), responses, both);
          }
        }
      }),
      { numRuns: 8 },
    );
  }, 300_000);

  it('when a response arrives after the counts were cached, invalidating shows it', async () => {
    await platform.models.Response.deleteMany({});
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 } });
    const campaign = new Types.ObjectId();
    const seeds = fc.sample(responseArbitrary, { numRuns: 3, seed: 7 });
    const [first, ...rest] = toResponses(seeds, campaign);
    await insertResponses(platform, [first!]);
    const filter: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    expect((await service.tables(filter)).responses).toBe(1);
    await insertResponses(platform, rest);
    service.invalidate();
    expect((await service.tables(filter)).responses).toBe(3);
  });

  it('pages between two polls take no decision; a poll brings what another process stored and the decision once, ahead of the next page; a response stored through this process counts at once', async () => {
    // Polled only when refresh() is called: the follower's timer, made explicit.
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 }, pollMs: 0 });
    const campaign = new Types.ObjectId();
    const [first, ...others] = toResponses(fc.sample(responseArbitrary, { numRuns: 5, seed: 9 }), campaign);
    const mine = others.pop()!;
    await insertResponses(platform, [first!]);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    const views: EvidenceFilter[] = [base, { ...base, breakdown: ['role'] }, { ...base, breakdown: ['country', 'role'] }];
    expect((await service.tables(base)).responses).toBe(1);
    const decided = service.decisionsTaken;
    // Written by another process one by one, each followed by the three pages: they show the counts as the follower left them.
    for (const response of others) {
      await insertResponses(platform, [response]);
      for (const view of views) await service.tables(view);
    }
    expect(service.decisionsTaken).toBe(decided);
    // The follower's poll applies the three together; their decision is taken once, without a page.
    await service.refresh();
    await expect.poll(() => service.decisionsTaken).toBe(decided + 1);
    for (const view of views) expect((await service.tables(view)).responses).toBe(4);
    expect(service.decisionsTaken).toBe(decided + 1);
    // Through this process: counted at once, no database read, decided by the page.
    service.apply({
      id: String(mine._id),
      campaign: String(campaign),
      institution: String(mine.institution),
      revision: 1,
      submittedAt: mine.submittedAt,
      profile: mine.profile,
      items: mine.items,
    });
    expect((await service.tables(base)).responses).toBe(5);
    expect(service.decisionsTaken).toBe(decided + 2);
    await service.close();
  });

  it('a response another process stores while a decision is under way shows after the one decision that follows it, without waiting for the next poll', async () => {
    const gate = decisionGate();
    // Following the journal, but its next poll an hour away: only the end of a decision reads the journal by itself here.
    const service = new EvidenceService({
      models: platform.models,
      tagKey: platform.tagKey,
      catalogue,
      thresholds: { minInstitutions: 1, minRespondents: 1 },
      pollMs: 3_600_000,
      decisionSliceMs: 0,
      betweenSlices: gate.betweenSlices,
    });
    const campaign = new Types.ObjectId();
    const [a, b, c] = toResponses(fc.sample(responseArbitrary, { numRuns: 3, seed: 13 }), campaign);
    await insertResponses(platform, [a!]);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    expect((await service.tables(base)).responses).toBe(1);
    const decided = service.decisionsTaken;

    // Another process stores a response; a poll brings it and its decision starts, then is held.
    gate.hold();
    await insertResponses(platform, [b!]);
    const refreshed = service.refresh();
    await expect.poll(() => gate.paused).toBeGreaterThan(0);
    // Stored while that decision is under way, after the poll passed the journal's end.
    await insertResponses(platform, [c!]);
    gate.release();
    await refreshed;

    // Its decision waits for the pace (decisionGapMs, 500 ms by default) from the held one's start.
    await expect.poll(async () => (await service.tables(base)).responses, { timeout: 5_000 }).toBe(3);
    // It waited for the decision under way and then for one more, its own.
    expect(service.decisionsTaken).toBe(decided + 2);
    await service.close();
  });

  it('a decision taken ahead of pages waits for its pace after the last one, while a page after a response stored through this process is answered at once', async () => {
    // Polled every 100 ms, decisions taken ahead of pages an hour apart: the pace, made observable.
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 }, pollMs: 100, decisionGapMs: 3_600_000 });
    const campaign = new Types.ObjectId();
    const [a, b, mine] = toResponses(fc.sample(responseArbitrary, { numRuns: 3, seed: 17 }), campaign);
    await insertResponses(platform, [a!]);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    expect((await service.tables(base)).responses).toBe(1);
    const decided = service.decisionsTaken;

    // Another process stores a response: a poll brings it, and its decision waits for the pace; pages meanwhile show the last decided tables.
    await insertResponses(platform, [b!]);
    await expect.poll(() => service.pacing).toBe(true);
    expect((await service.tables(base)).responses).toBe(1);
    expect(service.decisionsTaken).toBe(decided);

    // A response through this process: the page waits for the decision holding it, taken at once, with the other process's response too.
    service.apply({ id: String(mine!._id), campaign: String(campaign), institution: String(mine!.institution), revision: 1, submittedAt: mine!.submittedAt, profile: mine!.profile, items: mine!.items });
    expect((await service.tables(base)).responses).toBe(3);
    expect(service.decisionsTaken).toBe(decided + 1);
    await service.close();
    expect(service.pacing).toBe(false);
  });

  it('while a decision is under way, a page gets the last decided tables at once, a filter never built waits for the decision, and a response stored through this process meanwhile shows on the next page', async () => {
    const gate = decisionGate();
    // One step a slice, and a decision held between two of them from gate.hold() to gate.release().
    const service = new EvidenceService({
      models: platform.models,
      tagKey: platform.tagKey,
      catalogue,
      thresholds: { minInstitutions: 1, minRespondents: 1 },
      pollMs: 0,
      decisionSliceMs: 0,
      betweenSlices: gate.betweenSlices,
    });
    const campaign = new Types.ObjectId();
    const [a, b, c, mine] = toResponses(fc.sample(responseArbitrary, { numRuns: 4, seed: 11 }), campaign);
    await insertResponses(platform, [a!, b!]);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    const byRole: EvidenceFilter = { ...base, breakdown: ['role'] };
    expect((await service.tables(base)).responses).toBe(2);
    const roleBefore = await service.tables(byRole);
    const decided = service.decisionsTaken;
    const servedBefore = service.pagesServedMeanwhile;

    // Another process stores a response; the poll brings it and its decision starts, then is held.
    gate.hold();
    await insertResponses(platform, [c!]);
    // refresh() ends once the decision of what it brought is taken: at the end.
    const refreshed = service.refresh();
    await expect.poll(() => gate.paused).toBeGreaterThan(0);
    expect(service.deciding).toBe(true);

    // Pages answered meanwhile: the last decided pair, counts and decision together (2 responses, not 3).
    expect((await service.tables(base)).responses).toBe(2);
    expect(await service.tables(byRole)).toBe(roleBefore);
    expect(service.pagesServedMeanwhile).toBe(servedBefore + 2);
    expect(service.deciding).toBe(true);
    expect(service.decisionsTaken).toBe(decided);

    // Turns enough for a page to be answered if it did not wait (the decision cannot go on while held).
    const turns = async () => {
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    };
    // A filter no page asked for before has no decided tables: it waits for the decision under way.
    let byCountryShown: EvidenceTables | undefined;
    const byCountry = service.tables({ ...base, breakdown: ['country'] }).then((tables) => (byCountryShown = tables));
    await turns();
    expect(byCountryShown).toBeUndefined();
    // A response through this process while the decision is under way: held back, and the next page waits for a decision holding it.
    service.apply({ id: String(mine!._id), campaign: String(campaign), institution: String(mine!.institution), revision: 1, submittedAt: mine!.submittedAt, profile: mine!.profile, items: mine!.items });
    let mineShown: EvidenceTables | undefined;
    const afterMine = service.tables(base).then((tables) => (mineShown = tables));
    await turns();
    expect(mineShown).toBeUndefined();
    expect(gate.paused).toBe(1);

    gate.release();
    expect((await byCountry).responses).toBe(3);
    expect((await afterMine).responses).toBe(4);
    await refreshed;
    expect(service.decisionsTaken).toBe(decided + 2);
    expect(service.deciding).toBe(false);
    await service.close();
  });

  it('a page after a response stored through this process is answered once its own tables are built, and the other filters shown lately get theirs from the same decision after it', async () => {
    // One step a slice: each filter's tables are built in a slice of their own.
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 }, pollMs: 0, decisionSliceMs: 0 });
    const campaign = new Types.ObjectId();
    const [a, b, mine] = toResponses(fc.sample(responseArbitrary, { numRuns: 3, seed: 13 }), campaign);
    await insertResponses(platform, [a!, b!]);
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    const others: EvidenceFilter[] = [{ ...base, breakdown: ['role'] }, { ...base, breakdown: ['country'] }, { ...base, breakdown: ['country', 'role'] }];
    for (const view of [base, ...others]) expect((await service.tables(view)).responses).toBe(2);
    const decided = service.decisionsTaken;

    service.apply({ id: String(mine!._id), campaign: String(campaign), institution: String(mine!.institution), revision: 1, submittedAt: mine!.submittedAt, profile: mine!.profile, items: mine!.items });
    let atAnswer: { deciding: boolean; slices: number } | undefined;
    const page = await service.tables(base).then((tables) => ((atAnswer = { deciding: service.deciding, slices: service.decisionSlices }), tables));
    expect(page.responses).toBe(3);
    // Answered while the decision is still under way: the other filters' tables are built after, in slices of their own.
    expect(atAnswer?.deciding).toBe(true);
    await expect.poll(() => service.deciding).toBe(false);
    expect(service.decisionSlices).toBeGreaterThan(atAnswer!.slices);
    // Built by that one decision before it ended: served as they are, no decision more.
    for (const view of others) expect((await service.tables(view)).responses).toBe(3);
    expect(service.decisionsTaken).toBe(decided + 1);
    await service.close();
  });
});

describe('what a service keeps for pages', () => {
  it(`keeps the tables of the ${FILTERS_KEPT} filters asked for last, and a filter let go is made again, the same, when asked`, async () => {
    const service = new EvidenceService({ models: platform.models, tagKey: platform.tagKey, catalogue, thresholds: { minInstitutions: 1, minRespondents: 1 }, pollMs: 0 });
    const campaign = new Types.ObjectId();
    await insertResponses(platform, toResponses(fc.sample(responseArbitrary, { numRuns: 4, seed: 17 }), campaign));
    const base: EvidenceFilter = { campaigns: [String(campaign)], where: {}, breakdown: [] };
    // Every breakdown by one dimension and by two: 21 filters, more than are kept.
    const views: EvidenceFilter[] = DIMENSION_NAMES.flatMap((d, i) => [{ ...base, breakdown: [d] }, ...DIMENSION_NAMES.slice(i + 1).map((e) => ({ ...base, breakdown: [d, e] }))]);
    expect(views.length).toBeGreaterThan(FILTERS_KEPT);
    const first = new Map<EvidenceFilter, string>();
    for (const view of views) first.set(view, JSON.stringify(await service.tables(view)));
    expect(service.filtersKept).toBe(FILTERS_KEPT);
    // The first filters were let go: asked again, their tables are made again from the decision, and are the same.
    for (const view of views.slice(0, 3)) expect(JSON.stringify(await service.tables(view))).toBe(first.get(view));
    expect(service.filtersKept).toBe(FILTERS_KEPT);
    expect(service.decisionsTaken).toBe(1);
    await service.close();
  });
});

/** Holds a disclosure decision between two of its slices from hold() to release() (EvidenceDeps.betweenSlices), counting the pauses: a decision under way, made observable. */
function decisionGate() {
  let holding = false;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const gate = {
    paused: 0,
    betweenSlices: () => (holding ? ((gate.paused += 1), held) : undefined),
    hold: () => void (holding = true),
    release: () => {
      holding = false;
      release();
    },
  };
  return gate;
}
