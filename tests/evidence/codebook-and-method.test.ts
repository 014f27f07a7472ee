import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codebookTable } from '../../server/evidence/codebook.ts';
import { ACCREDITED_STATUSES, defineIndicators, SUBSTITUTE_MATURITY } from '../../server/evidence/indicators.ts';
import { buildCatalogue } from '../../server/evidence/question-catalogue.ts';
import { loadSurveyLibrary, type JsonObject } from '../../server/surveys/definitions.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { insertCountry } from './evidence-data.ts';

/** The codebook as objects: header → cell, per line. */
function codebookOf(library = loadSurveyLibrary()) {
  const table = codebookTable(buildCatalogue(library));
  const [header, ...rows] = table.rows;
  return rows.map((row) => Object.fromEntries(header!.map((column, i) => [column, row[i] ?? ''])));
}

const byCode = (lines: Array<Record<string, string>>, code: string) => lines.find((l) => l['Code'] === code)!;

describe('the codebook', () => {
  it('gives every question its routing in words, number ranges and decimals, pick limits and cross-checks, read from the definitions', () => {
    const lines = codebookOf();
    const catalogue = buildCatalogue(loadSurveyLibrary());
    for (const q of catalogue.questions) expect(byCode(lines, q.name), q.name).toBeDefined();
    // Routing: S2 only when P11 is yes; S4 only for heads and coordinators; a follow-up only when S2.9a > 0.
    expect(byCode(lines, 'S2_1')['Asked when']).toBe('P11 is yes');
    expect(byCode(lines, 'S4_1')['Asked when']).toContain('P9 is one of Head of institution (head), International or mobility coordinator (intl_coordinator)');
    expect(byCode(lines, 'S2_10a')['Asked when']).toBe('P11 is yes; and S2_9a is more than 0');
    expect(byCode(lines, 'S1_1')['Asked when']).toBe('always (within its strand)');
    // Numbers: range, decimals, unit.
    expect(byCode(lines, 'S4_3a')['Numbers (range, decimals, unit)']).toMatch(/^0 to 50; 1 decimal\(s\); unit: FTE/);
    expect(byCode(lines, 'S4_5')['Numbers (range, decimals, unit)']).toBe('0 to 100; whole numbers; unit: %');
    // Pick limits and cross-checks.
    expect(byCode(lines, 'S1_3')['Pick limits']).toContain('exactly 3');
    expect(byCode(lines, 'S2_10a')['Cross-checks']).toContain('{S2_10a} <= {S2_9a}');
    // S4.7's maturity levels, as the IMI reads them.
    expect(byCode(lines, 'S4_7')['Counted in (indicator rows)']).toContain(Object.entries(SUBSTITUTE_MATURITY).map(([code, level]) => `${code} = ${level}`).join(', '));
    // How each answer is written in the raw export.
    expect(byCode(lines, 'S1_3')['Raw export (how the answer is written)']).toContain('rank order');
  });

  it('gives every indicator its formula, and states the S4, accreditation, encoding and blank rules', () => {
    const lines = codebookOf();
    const set = defineIndicators(buildCatalogue(loadSurveyLibrary()));
    for (const def of set.indicators) expect(byCode(lines, def.code)['Formula (indicator lines)'], def.code).not.toBe('');
    expect(byCode(lines, 'learner_mobility_rate')['Formula (indicator lines)']).toBe(
      "100 × Σ S2_9a / Σ S2_9b, both sums over the responses that gave S2_9b and at least one of S2_9a (a missing part counts 0), pooled over every respondent's figures, several respondents of one institution each",
    );
    expect(byCode(lines, 'qci')['Formula (indicator lines)']).toContain('pooled over the items S2_1');
    expect(byCode(lines, 'staff_mobility_rate')['Formula (indicator lines)']).toContain('one response per institution');
    const notes = lines.filter((l) => l['Code'] === 'Note').map((l) => l['Text (en)']).join('\n');
    expect(notes).toContain('S4 (management and impact) counts once per institution');
    expect(notes).toContain(`P8 = ${[...ACCREDITED_STATUSES].join(' or ')}`);
    expect(notes).toContain('UTF-8 with a byte-order mark');
    expect(notes).toContain('A blank cell means no answer is stored: the question was not asked');
  });

  it('a question added to a definition gets its line from the definition alone', () => {
    const library = loadSurveyLibrary();
    const page = (library.strands.S2.pages as JsonObject[])[0]!;
    (page.elements as JsonObject[]).push({
      type: 'text',
      inputType: 'number',
      name: 'S2_99',
      strand: 'S2',
      indicator: 'learner_mobility_rate',
      title: { default: 'Test figure (days)' },
      min: 1,
      max: 30,
      step: 0.5,
      visibleIf: "{P9} = 'head'",
      validators: [{ type: 'expression', expression: '{S2_99} <= {S2_9a}', text: { default: 'Not more than the outgoing learners.' } }],
    });
    const line = byCode(codebookOf(library), 'S2_99');
    expect(line['Asked when']).toBe('P11 is yes; and P9 is Head of institution (head)');
    expect(line['Numbers (range, decimals, unit)']).toBe('1 to 30; 1 decimal(s); unit: days');
    expect(line['Cross-checks']).toBe('Not more than the outgoing learners. [{S2_99} <= {S2_9a}]');
  });
});

describe('the methodological note', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform({ minCellInstitutions: 5, minCellRespondents: 10 });
  });
  afterAll(async () => {
    await platform.close();
  });

  it('says which statuses count as accredited, that partial answers are used pairwise, which means pool items and how S2 institution figures are pooled', async () => {
    const campaign = new Types.ObjectId();
    await insertCountry(platform, campaign, 'AT', 5, 10);
    const { agent } = await signIn(platform, 'reviewer');
    const report = (await agent.get(`/evidence/report?campaign=${campaign}`).expect(200)).text;
    const note = report.split('<section class="method-note">')[1]!.split('</section>')[0]!;
    expect(note).toContain('<strong>Accredited</strong> means Erasmus+ status (P8) "accredited" or "consortium coordinator"');
    expect(note).toContain('can flip its sign');
    expect(note).toContain('<strong>Partial answers</strong> are used pairwise');
    expect(note).toContain('<strong>Means pooled over items</strong>: the QCI (S2.1–S2.7), the IMI');
    expect(note).toContain('an institution with two respondents in S2 counts twice');
    expect(note).toContain('S4) counts once per institution');
  });
});
