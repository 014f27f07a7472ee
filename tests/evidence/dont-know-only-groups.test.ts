import { describe, expect, it } from 'vitest';
import { auditCounts, CountAudit, type AuditInput } from '../../server/evidence/count-audit.ts';
import { indexLines, type AnswerCounts } from '../../server/evidence/count-suppression.ts';

/**
 * A group that answered a question only with "don't know" has no valid
 * answers, and an outsider takes that 0 as known, as an empty group's (the
 * linear-programming auditor's seeds 7 and 9 pinned counts through it: README,
 * "A group that answered only 'don't know'"). Here: the overall cell T is
 * published and is the sum of groups A and B; B is the sum of B1 (empty)
 * and B2, whose two respondents both said "don't know". So B's valid answers
 * are B2's, 0, and A's hidden counts are T's: pinned.
 */
const ids = ['T', 'A', 'B', 'B1', 'B2'];
const lattice = indexLines(ids, [
  { total: 'T', members: ['A', 'B'] },
  { total: 'B', members: ['B1', 'B2'] },
]);
const n = ids.length;
const column = (values: Record<string, number>) => Int32Array.from(ids, (id) => values[id] ?? 0);

// Categories: "yes" and "no" (the valid answers, sum 0), then "don't know" (its own sum, 1).
const answers: AnswerCounts = {
  counts: [column({ T: 2, A: 2 }), column({ T: 1, A: 1 }), column({ T: 2, B: 2, B2: 2 })],
  sumOf: [0, 0, 1],
  openSum: 1,
  respondents: column({ T: 5, A: 3, B: 2, B2: 2 }),
  dontKnow: column({ T: 2, B: 2, B2: 2 }),
};
const cellHidden = Uint8Array.from(ids, (id) => (['A', 'B', 'B2'].includes(id) ? 1 : 0));
const input: AuditInput = { lattice, answers, cellHidden, countHidden: () => false, forcesWhole: () => false };

describe('a group that answered only "don\'t know"', () => {
  it('counts as having no valid answers in the audit, so the counts it would leave open are found pinned, from scratch and by the kept audit', () => {
    const pinned = auditCounts(input).pinned.map((v) => `${Math.floor(v / n)}@${ids[v % n]}`);
    expect(pinned).toEqual(expect.arrayContaining([`0@A`, `1@A`]));
    expect(new CountAudit(lattice, answers).audit(input, []).pinned).toEqual(auditCounts(input).pinned);
  });
});
