import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../../server/evidence/disclosure.ts';
import { isDontKnowCount, latticeOf, solveAll } from './auditor.ts';
import { publish, records } from './demo-like-campaign.ts';

/**
 * An outsider who adds up a scale's counts over its top-two split (the top
 * two points and the rest) in every cell, from the published counts and valid
 * answers alone, against a campaign made as seed:demo makes its waves (50
 * institutions here, four contacts each, the real thresholds). When a
 * published cell could hide some of a sum's counts and show the others, such
 * sums pinned 18 hidden counts of eleven scales on this campaign (1,673 on the
 * demo wave of 150 institutions, 1,816 adding up over every split): a line
 * whose other cells' sums are known gives one cell's sum, and a hidden count
 * is that sum minus the shown counts beside it. Now a published cell shows
 * all of a sum's counts or none (count-suppression.ts).
 */

describe('sums over a split of a scale\'s points', () => {
  it('pin no hidden answer count on a campaign made like the demo data, with the real thresholds', () => {
    const all = records(50);
    const publication = publish(all, DEFAULT_THRESHOLDS, true);
    expect(publication.contradictions).toEqual([]);
    const open = publish(all, { minInstitutions: 1, minRespondents: 1 }, false);
    const lattice = latticeOf(open, 3);
    const scales = new Set([...publication.kinds].filter(([, kind]) => kind === 'scale').map(([figure]) => figure));
    const quantities = (figure: string) => scales.has(figure);
    const truth = solveAll(open, lattice, (figure, cell) => open.hidden.get(figure)?.has(cell) ?? false, { sides: 'topTwo', quantities });
    const valueOf = (figure: string, cell: string, quantity: string) => truth.get(figure)?.get(cell)?.get(quantity)?.lo ?? 0;
    const hasAnswers = (figure: string, cell: string) => [...(truth.get(figure)?.get(cell)?.values() ?? [])].some((b) => b.lo !== 0);
    const bounds = solveAll(publication, lattice, (figure, cell) => !hasAnswers(figure, cell), { withinCells: true, sides: 'topTwo', quantities });
    const pinned: string[] = [];
    let hiddenCounts = 0;
    for (const figure of scales) {
      for (const [cell, cellBounds] of bounds.get(figure) ?? []) {
        const shown = publication.published.get(figure)?.get(cell);
        if ((!shown && !publication.hidden.get(figure)?.has(cell)) || !hasAnswers(figure, cell)) continue;
        for (const [quantity, { lo, hi }] of cellBounds) {
          if (!quantity.startsWith('count ') || isDontKnowCount(quantity) || (shown && !Number.isNaN(shown.get(quantity)))) continue;
          const value = valueOf(figure, cell, quantity);
          if (value === 0) continue;
          expect(value, `${figure} ${quantity} at "${cell}"`).toBeGreaterThanOrEqual(lo - 1e-6);
          expect(value, `${figure} ${quantity} at "${cell}"`).toBeLessThanOrEqual(hi + 1e-6);
          hiddenCounts += 1;
          if (hi - lo < 1 - 1e-6) pinned.push(`${figure} ${quantity} at "${cell}" (true ${value}) pinned to [${lo}, ${hi}]`);
        }
      }
    }
    // Counts hidden one sum at a time inside published cells, not only with whole cells.
    const withheldInPublished = [...scales].some((figure) => [...(publication.published.get(figure)?.values() ?? [])].some((q) => [...q.values()].some(Number.isNaN)));
    expect(withheldInPublished).toBe(true);
    expect(hiddenCounts).toBeGreaterThan(0);
    expect(pinned.slice(0, 5)).toEqual([]);
  });
});
