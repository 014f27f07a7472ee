import { describe, expect, it } from 'vitest';
import { QuestionnaireRegistry } from '../../server/surveys/questionnaire-registry.ts';
import { randomSource, syntheticAnswers, syntheticInstitution, validatedResponse } from '../../scripts/synthetic-responses.ts';

const registry = new QuestionnaireRegistry();
const STRANDS = ['S1', 'S2', 'S3', 'S4'];

/** What seed:demo generates, without a database: 150 institutions, 4 people each, per wave. */
function wave(wave: 1 | 2) {
  const out = [];
  for (let i = 0; i < 150; i++) {
    const institution = syntheticInstitution(randomSource(10_000 + i), i);
    for (let c = 0; c < 4; c++) out.push({ institution, answers: syntheticAnswers(randomSource(wave * 1_000_000 + i * 10 + c), institution, wave) });
  }
  return out;
}

/** Barrier index: share answering Moderate or Major, don't know excluded. */
function barrierIndex(rows: Array<{ answers: Record<string, unknown> }>, code: string) {
  const valid = rows.map((r) => r.answers[code]).filter((v) => typeof v === 'number') as number[];
  return valid.filter((v) => v >= 3).length / valid.length;
}

describe('the demo data tells a story', () => {
  const first = wave(1);
  const second = wave(2);

  it('synthetic responses of both waves pass the server validator (every 8th; seed:demo validates them all)', () => {
    const sample = [...first, ...second].filter((_, i) => i % 8 === 0);
    const refused = sample.map((r) => validatedResponse(registry, r.answers, STRANDS)).filter((r) => !r.ok);
    expect(refused).toEqual([]);
  });

  it('replacement cover and funding are far ahead of language skills, and countries and institution types differ', () => {
    const cover = barrierIndex(first, 'S1_2a');
    const substitute = barrierIndex(first, 'S1_2c');
    const language = barrierIndex(first, 'S1_2d');
    expect(cover).toBeGreaterThan(0.55);
    expect(substitute).toBeGreaterThan(0.5);
    expect(language).toBeLessThan(0.35);
    expect(cover - language).toBeGreaterThan(0.3);
    const byCountry = (country: string) => barrierIndex(first.filter((r) => r.institution.country === country), 'S1_2d');
    expect(byCountry('FR') - byCountry('NL')).toBeGreaterThan(0.15);
    const byType = (type: string) => barrierIndex(first.filter((r) => r.institution.type === type), 'S1_2a');
    expect(byType('ivet_dual') - byType('chamber_sector')).toBeGreaterThan(0.2);
  });

  it('the second wave shows movement: fewer funding barriers and more staff abroad', () => {
    expect(barrierIndex(first, 'S1_2c') - barrierIndex(second, 'S1_2c')).toBeGreaterThan(0.05);
    const participation = (rows: typeof first) => rows.filter((r) => r.answers.S1_1 === true).length / rows.length;
    expect(participation(second)).toBeGreaterThan(participation(first));
  });

  it('free-text quotes are varied, and staff and learner counts fit the size bands', () => {
    const quotes = first.map((r) => r.answers.S1_6).filter((q): q is string => typeof q === 'string');
    expect(quotes.length).toBeGreaterThan(80);
    expect(new Set(quotes).size / quotes.length).toBeGreaterThan(0.7);
    for (const { institution, answers } of first) {
      const staff = answers.S4_4a as number;
      const band = institution.staffSize;
      const [low, high] = ({ under_25: [0, 26], '25_99': [23, 104], '100_249': [95, 262], '250_plus': [237, 20000] } as Record<string, [number, number]>)[band]!;
      expect(staff, `${band}: ${staff}`).toBeGreaterThanOrEqual(low);
      expect(staff, `${band}: ${staff}`).toBeLessThanOrEqual(high);
      expect(answers.S2_9a as number).toBeLessThanOrEqual(answers.S2_9b as number);
      expect((answers.S4_4b as number) + (answers.S4_4c as number) + (answers.S4_4d as number)).toBeLessThanOrEqual(staff);
    }
  });
});
