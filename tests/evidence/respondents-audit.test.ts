import { describe, expect, it } from 'vitest';
import { indexLines } from '../../server/evidence/count-suppression.ts';
import { boundedResponses, withinResponsesForced } from '../../server/evidence/indicator.service.ts';
import { auditWithinResponses, type SizeColumn } from '../../server/evidence/respondents-audit.ts';

/** Overall and three countries: one line, the overall cell its total. */
const ids = ['', 'country=AT', 'country=DE', 'country=FR'];
const lattice = indexLines(ids, [{ total: '', members: ids.slice(1) }]);
const column = (sizes: number[], hidden: string[]): SizeColumn => ({ sizes: Int32Array.from(sizes), hidden: (c) => hidden.includes(ids[c]!) });
const named = (pinned: number[]) => pinned.map((v) => `${Math.floor(v / ids.length)} ${ids[v % ids.length]}`);

describe("the audit of the numbers of responses with the questions' respondents", () => {
  it('pins hidden numbers of responses whose lower bounds, the respondents of questions published there, add up to the published total', () => {
    const responses = column([20, 4, 8, 8], ['country=AT', 'country=DE', 'country=FR']);
    // Everyone answered the question, and it is published in every country.
    const finding = auditWithinResponses(lattice, responses, [column([20, 4, 8, 8], [])]);
    expect(finding.checked).toBe(3);
    expect(named(finding.pinned)).toEqual(['0 country=AT', '0 country=DE', '0 country=FR']);
  });

  it('leaves them two values wide where the lower bounds fall one short of the total', () => {
    const responses = column([20, 4, 8, 8], ['country=AT', 'country=DE', 'country=FR']);
    // 7 of FR's 8 answered: 4 + 8 + 7 = 19 of 20.
    expect(auditWithinResponses(lattice, responses, [column([19, 4, 8, 7], [])]).pinned).toEqual([]);
  });

  it("pins a hidden question's respondents where the group's number of responses is published and the line leaves no room", () => {
    // Responses all published; the question hidden in AT and DE, published overall and in FR: AT ≤ 4 and DE ≤ 8, and AT + DE = 12.
    const responses = column([20, 4, 8, 8], []);
    const question = column([19, 4, 8, 7], ['country=AT', 'country=DE']);
    expect(named(auditWithinResponses(lattice, responses, [question]).pinned)).toEqual(['1 country=AT', '1 country=DE']);
  });

  it('pins nothing once a question hides its cells where the number of responses is hidden and bounded by a published total (the mechanism\'s rule)', () => {
    const responses = column([20, 4, 8, 8], ['country=AT', 'country=DE', 'country=FR']);
    const bounded = boundedResponses(lattice, ids.length, responses.hidden);
    const forced = withinResponsesForced(bounded, responses.hidden, () => true);
    expect([...forced].map((c) => ids[c])).toEqual(['country=AT', 'country=DE', 'country=FR']);
    const question = column([20, 4, 8, 8], [...forced].map((c) => ids[c]!));
    expect(auditWithinResponses(lattice, responses, [question]).pinned).toEqual([]);
  });

  it('leaves a question published where no published number of responses bounds the hidden one from above, which then has no range to close', () => {
    // Every number of responses hidden, the overall one too (a small campaign): the question stays published everywhere.
    const responses = column([20, 4, 8, 8], ids);
    const bounded = boundedResponses(lattice, ids.length, responses.hidden);
    expect([...withinResponsesForced(bounded, responses.hidden, () => true)]).toEqual([]);
    expect(auditWithinResponses(lattice, responses, [column([20, 4, 8, 8], [])]).pinned).toEqual([]);
    // A hidden total is bounded when every member of its line is published.
    const members = column([20, 4, 8, 8], ['']);
    expect([...boundedResponses(lattice, ids.length, members.hidden)]).toEqual([1, 1, 1, 1]);
  });
});
