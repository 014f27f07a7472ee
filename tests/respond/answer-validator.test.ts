import { describe, expect, it } from 'vitest';
import { AnswerValidator } from '../../server/respond/answer-validator.ts';

// Question types the strand definitions do not use today but the validator must
// still police, should a definition adopt them.
const definition = {
  pages: [
    {
      name: 'only',
      elements: [
        { type: 'rating', name: 'R1', rateMin: 1, rateMax: 5 },
        { type: 'ranking', name: 'K1', choices: ['a', 'b', 'c'] },
        { type: 'matrix', name: 'M1', rows: ['r1', 'r2'], columns: ['c1', 'c2'] },
        { type: 'text', name: 'T1', inputType: 'number', min: 0, max: 10, step: 0.5 },
      ],
    },
  ],
};
const validator = new AnswerValidator(definition, ['R1', 'K1', 'M1', 'T1'].map((name) => ({ name, strand: 'S1' })));

describe('answer validator for other question types', () => {
  it('when a rating is outside its range or not a number, it is rejected', () => {
    expect(validator.validate({ R1: 6 }, 'en')).toMatchObject({ ok: false, errors: { R1: [expect.any(String)] } });
    expect(validator.validate({ R1: '3' }, 'en').ok).toBe(false);
    expect(validator.validate({ R1: 3 }, 'en').ok).toBe(true);
  });

  it('when a full ranking leaves out or repeats a choice, it is rejected', () => {
    expect(validator.validate({ K1: ['a', 'b'] }, 'de').ok).toBe(false);
    expect(validator.validate({ K1: ['a', 'a', 'b'] }, 'de').ok).toBe(false);
    const ok = validator.validate({ K1: ['c', 'a', 'b'] }, 'de');
    expect(ok).toMatchObject({ ok: true, items: [
      { question: 'K1', value: 'c', rank: 1 },
      { question: 'K1', value: 'a', rank: 2 },
      { question: 'K1', value: 'b', rank: 3 },
    ] });
  });

  it('when a matrix names an unknown row or column, it is rejected; valid rows become one item each', () => {
    expect(validator.validate({ M1: { r3: 'c1' } }, 'fr').ok).toBe(false);
    expect(validator.validate({ M1: { r1: 'c9' } }, 'fr').ok).toBe(false);
    expect(validator.validate({ M1: { r1: { $ne: 1 } } }, 'fr').ok).toBe(false);
    expect(validator.validate({ M1: { r1: 'c2' } }, 'fr')).toMatchObject({ ok: true, items: [{ question: 'M1', row: 'r1', value: 'c2' }] });
  });

  it('when a number allows halves, 2.5 passes and 2.25 or 11 do not', () => {
    expect(validator.validate({ T1: 2.5 }, 'en').ok).toBe(true);
    expect(validator.validate({ T1: 11 }, 'en').ok).toBe(false);
    expect(validator.validate({ T1: Number.NaN }, 'en').ok).toBe(false);
  });
});

describe('answer validator for drafts (partial mode)', () => {
  it('when a draft holds a ranking still in progress or a number not yet in range, it passes; a wrong shape does not', () => {
    expect(validator.validateDraft({ K1: ['b'], T1: 11, M1: { r1: 'c1' } }, 'en')).toEqual({ ok: true, data: { K1: ['b'], T1: 11, M1: { r1: 'c1' } } });
    expect(validator.validateDraft({ K1: ['b', 'b'] }, 'en').ok).toBe(false);
    expect(validator.validateDraft({ K1: ['a', 'b', 'c', 'd'] }, 'en').ok).toBe(false);
    expect(validator.validateDraft({ T1: '11' }, 'en').ok).toBe(false);
    expect(validator.validateDraft({ M1: { r1: { $ne: 1 } } }, 'en').ok).toBe(false);
    expect(validator.validateDraft({ R1: 9 }, 'en').ok).toBe(false);
  });

  it('when a draft carries keys that are not questions, they are dropped', () => {
    expect(validator.validateDraft({ R1: 2, $where: 'x', 'a.b': 1 }, 'en')).toEqual({ ok: true, data: { R1: 2 } });
  });
});
