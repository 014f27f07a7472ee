import { expect, it } from 'vitest';
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { DEFAULT_THRESHOLDS, WITHHELD_CELL_NOTE, WITHHELD_NOTE } from '../../server/evidence/disclosure.ts';
import { formatCell } from '../../server/evidence/evidence-format.ts';

/**
 * A withheld indicator value (its n published) used to read "suppressed
 * (some answer counts suppressed, and the figures that would give them
 * back)" in every such cell: on the demo wave by country, where most QCI
 * values are withheld, that made one column of the table about 800 px wide.
 * Now the cell says "value withheld" beside its n, its title says why, and
 * the table's note says it once.
 */
it('shows a withheld value short, with its n, and says why in its title and once in the table note', () => {
  const cell = formatCell({ unit: 'percent' }, { suppressed: false, respondents: 40, value: null, n: 92, withheld: true }, DEFAULT_THRESHOLDS);
  expect(cell).toMatchObject({ text: 'value withheld', n: 92, suppressed: false, title: WITHHELD_NOTE });

  const handlebars = Handlebars.create();
  handlebars.registerHelper('pluralWord', (n: number, one: string, many: string) => (n === 1 ? one : many));
  const table = handlebars.compile(readFileSync(new URL('../../views/partials/evidence-group-table.hbs', import.meta.url), 'utf8'));
  const html = table({ caption: 'By country', table: { columns: [{ code: 'qci', label: 'QCI' }], rows: [{ label: 'Belgium', cells: [cell] }] } }, { data: { root: { responses: 92, note: 'suppressed', withheldCellNote: WITHHELD_CELL_NOTE, unlistedNote: 'unlisted' } } });
  expect(html).toContain(`<td class="" title="${WITHHELD_NOTE}">value withheld <span class="n">n = 92</span></td>`);
  expect(html).toContain('&quot;value withheld&quot;: some of the group&#x27;s answer counts are suppressed');
});
