import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COUNTRY_CODES, countryCodeOf, INSTITUTION_TYPES, institutionTypeOf } from '../../server/institutions/institution-codes.ts';

interface Choice {
  value: string;
  text: { default: string; fr: string; de: string };
}
/** P1 and P2 as the questionnaire asks them: institutions carry the same codes as the answers. */
function choicesOf(name: string): Choice[] {
  const find = (node: unknown): { choices: Choice[] } | undefined => {
    if (!node || typeof node !== 'object') return undefined;
    if ((node as { name?: string }).name === name) return node as { choices: Choice[] };
    for (const value of Object.values(node)) {
      const found = find(value);
      if (found) return found;
    }
    return undefined;
  };
  return find(JSON.parse(readFileSync(new URL('../../surveys/profile.json', import.meta.url), 'utf8')))!.choices;
}

describe("the institutions' country and type codes", () => {
  it("are the questionnaire's P1 and P2 answers, with its labels in English, French and German", () => {
    expect([...COUNTRY_CODES].sort()).toEqual(choicesOf('P1').map((c) => c.value).sort());
    expect(INSTITUTION_TYPES.map((t) => ({ value: t.code, text: { default: t.label, fr: t.fr, de: t.de } }))).toEqual(choicesOf('P2'));
  });

  it("an import reads every country's and type's label in the questionnaire's three languages, whatever the case or accents", () => {
    for (const choice of choicesOf('P1')) {
      for (const label of Object.values(choice.text)) {
        expect(countryCodeOf(label), label).toBe(choice.value);
        expect(countryCodeOf(label.toUpperCase()), label).toBe(choice.value);
        expect(countryCodeOf(label.normalize('NFD').replace(/\p{M}/gu, '')), label).toBe(choice.value);
      }
    }
    for (const choice of choicesOf('P2')) {
      for (const label of Object.values(choice.text)) {
        expect(institutionTypeOf(label), label).toBe(choice.value);
        expect(institutionTypeOf(` ${label.toLowerCase().replace(/'/g, '\u2019')} `), label).toBe(choice.value);
      }
    }
  });

  it('a code in any case and an export\'s label ("AT (Austria)") stay codes; what is no country is kept as written, for the message', () => {
    expect(countryCodeOf('at')).toBe('AT');
    expect(countryCodeOf('AT (Austria)')).toBe('AT');
    expect(countryCodeOf('Other country')).toBe('other');
    expect(countryCodeOf('Greece')).toBe('EL');
    expect(countryCodeOf('GR')).toBe('GR');
    expect(countryCodeOf('Germny')).toBe('Germny');
    expect(countryCodeOf('United States')).toBe('United States');
  });
});
