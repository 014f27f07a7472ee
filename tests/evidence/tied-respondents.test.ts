import { describe, expect, it } from 'vitest';
import { indexLines } from '../../server/evidence/count-suppression.ts';
import { TiedRespondentLines, tiedListing, tiedRespondents } from '../../server/evidence/indicator.service.ts';
import { cube } from './auditor.ts';
import { seededRandom } from '../seeded-random.ts';

/**
 * The rule for tied respondents (indicator.service.ts tiedRespondents) lists
 * the lines that can leave no room once per decision and is then asked in
 * every round of sameSizeRounds with the number of responses' decision of
 * that round: what it forces must follow each round's hidden numbers of
 * responses, not the first round's.
 *
 * One line: a total T everyone answered, published by the question's unit,
 * and members A and B (3 responses each, hidden by primary suppression,
 * everyone answered) and C (published).
 */
const cells = ['T', 'A', 'B', 'C'];
const index = indexLines(cells, [{ total: 'T', members: ['A', 'B', 'C'] }]);
const at = (id: string) => cells.indexOf(id);
const responses = Int32Array.from([10, 3, 3, 4]);
const open = (_: number, c: number) => c === at('T') || c === at('C');

describe('the rule for tied respondents, asked round after round', () => {
  it('forces the smallest tied member where no number of responses on the line is hidden, and nothing once one is, whichever round comes first', () => {
    const tied = tiedRespondents(index, [{ unit: 1, sizes: responses }], responses, open);
    const hiddenOnly = (...ids: string[]) => (c: number) => ids.some((id) => at(id) === c);
    expect(tied(hiddenOnly()).map((c) => cells[c])).toEqual(['A']);
    // A hidden number of responses on the line (a tied member, a published member, the total) leaves room.
    expect(tied(hiddenOnly('B'))).toEqual([]);
    expect(tied(hiddenOnly('C'))).toEqual([]);
    expect(tied(hiddenOnly('T'))).toEqual([]);
    expect(tied(hiddenOnly()).map((c) => cells[c])).toEqual(['A']);
  });

  it('leaves a line alone where someone in a hidden member did not answer', () => {
    const sizes = Int32Array.from([9, 2, 3, 4]);
    const tied = tiedRespondents(index, [{ unit: 1, sizes }], responses, open);
    expect(tied(() => false)).toEqual([]);
  });
});

describe('the rule for tied respondents kept between decisions', () => {
  it('after random changes of respondents, numbers of responses and primary cells, forces exactly the cells the rule from scratch forces', () => {
    const { cells: ids, lines, inner } = cube();
    const lattice = indexLines(ids, lines);
    const n = ids.length;
    // Per inner group, the cells whose counts include it (itself and every coarser cell over it).
    const over = new Map(inner.map((x) => [x, ids.flatMap((c, i) => ([...c].every((ch, a) => ch === '*' || ch === x[a]) ? [i] : []))]));
    const random = seededRandom(20261203);
    const pick = <T,>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    let steps = 0;
    let forcing = 0;
    for (let run = 0; run < 40; run++) {
      // Three questions (units 1 to 3), most groups' respondents all answering, so that many hidden cells are candidates.
      const responses = new Int32Array(n);
      const questions = [1, 2, 3].map((unit) => ({ unit, sizes: new Int32Array(n) }));
      const primary = new Map(questions.map(({ unit }) => [unit, new Uint8Array(n)]));
      const add = (counts: Int32Array, group: string, by: number) => {
        for (const c of over.get(group)!) counts[c]! += by;
      };
      for (const group of inner) {
        const here = Math.floor(random() * 4);
        add(responses, group, here);
        for (const { sizes } of questions) add(sizes, group, random() < 0.8 ? here : Math.floor(random() * here));
      }
      for (const hidden of primary.values()) for (let c = 0; c < n; c++) hidden[c] = random() < 0.4 ? 1 : 0;
      const open = (u: number, c: number) => primary.get(u)![c] === 0;
      const kept = new TiedRespondentLines(lattice);
      kept.update(questions, responses, open, []);
      for (let step = 0; step < 20; step++) {
        // A response more or less in a group (answering one question, some or all), or a group's primary cells changing.
        const group = pick(inner);
        const changed = over.get(group)!;
        const roll = random();
        if (roll < 0.5) {
          const by = responses[ids.indexOf(group)]! > 0 && random() < 0.5 ? -1 : 1;
          add(responses, group, by);
          for (const { sizes } of questions) if (random() < 0.7 && sizes[ids.indexOf(group)]! + by >= 0) add(sizes, group, by);
        } else if (roll < 0.7) {
          const { sizes } = pick(questions);
          if (sizes[ids.indexOf(group)]! < responses[ids.indexOf(group)]!) add(sizes, group, 1);
        } else {
          const hidden = primary.get(pick(questions).unit)!;
          for (const c of changed) if (random() < 0.5) hidden[c] = 1 - hidden[c]!;
        }
        const tied = kept.update(questions, responses, open, changed);
        const fromScratch = tiedRespondents(lattice, questions, responses, open);
        for (const responsesHidden of [() => false, (c: number) => c % 5 === step % 5]) {
          const forced = fromScratch(responsesHidden);
          expect(tied(responsesHidden), `run ${run}, step ${step}`).toEqual(forced);
          if (forced.length > 0) forcing += 1;
        }
        steps += 1;
      }
    }
    expect(steps).toBe(800);
    // The rule forced cells often enough for the comparison to mean something.
    expect(forcing).toBeGreaterThan(200);
  });
});

describe('a listing of tied lines as kept', () => {
  it('is 16-bit while every line and cell number fits, 32-bit past that, with the same values either way', () => {
    const small = [0, 7, 3, 2, 65_535, 4];
    const kept = tiedListing(small);
    expect(kept.BYTES_PER_ELEMENT).toBe(2);
    expect([...kept]).toEqual(small);
    const large = [65_536, 7, 3, 2, 65_535, 4];
    const wide = tiedListing(large);
    expect(wide.BYTES_PER_ELEMENT).toBe(4);
    expect([...wide]).toEqual(large);
    expect([...tiedListing([])]).toEqual([]);
  });
});
