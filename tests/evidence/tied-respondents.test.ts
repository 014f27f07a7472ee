import { describe, expect, it } from 'vitest';
import { indexLines } from '../../server/evidence/count-suppression.ts';
import { tiedRespondents } from '../../server/evidence/indicator.service.ts';

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
