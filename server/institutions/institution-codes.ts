/**
 * The survey's country (P1) and institution type (P2) codes, as in
 * surveys/profile.json: institutions carry the same codes as the answers, so
 * that response rates can be broken down by the same dimensions.
 */
export const COUNTRY_CODES = [
  'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'EL', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL',
  'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE', 'IS', 'LI', 'NO', 'CH', 'AL', 'BA', 'GE', 'MD', 'ME', 'MK', 'RS', 'TR', 'UA', 'XK',
  // The survey's "Other country" answer, in lower case as in surveys/profile.json.
  'other',
] as const;
export type CountryCode = (typeof COUNTRY_CODES)[number];

/** A name as compared: without case, accents, dots and dashes, a typographic apostrophe as a plain one ("Österreich", "osterreich"; "Bosnia & Herzegovina"). */
const nameKey = (name: string) =>
  name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[\u2019\u02bc]/g, "'")
    .replace(/&/g, ' and ')
    .replace(/[\s.,\-\u2010]+/g, ' ')
    .trim();

/** The survey's P2 answers: code, English label, and the French and German labels of the questionnaire (tests/institutions/codes.test.ts keeps them equal). */
export const INSTITUTION_TYPES = [
  { code: 'ivet_school', label: 'School-based initial VET', fr: 'Formation professionnelle initiale en milieu scolaire', de: 'Schulische berufliche Erstausbildung' },
  { code: 'ivet_dual', label: 'Dual or apprenticeship-based initial VET', fr: 'Formation professionnelle initiale en alternance ou en apprentissage', de: 'Duale Berufsausbildung oder Lehrlingsausbildung' },
  { code: 'cvet_adult', label: 'Continuing VET or adult education provider', fr: "Organisme de formation continue ou d'éducation des adultes", de: 'Anbieter beruflicher Weiterbildung oder Erwachsenenbildung' },
  { code: 'company_centre', label: 'Company training centre', fr: "Centre de formation d'entreprise", de: 'Betriebliches Ausbildungszentrum' },
  { code: 'chamber_sector', label: 'Chamber or sectoral body', fr: 'Chambre consulaire ou organisme sectoriel', de: 'Kammer oder Branchenorganisation' },
  { code: 'post_secondary', label: 'Post-secondary VET provider', fr: 'Établissement de formation professionnelle post-secondaire', de: 'Anbieter postsekundärer Berufsbildung' },
] as const;
export type InstitutionType = (typeof INSTITUTION_TYPES)[number]['code'];
export const INSTITUTION_TYPE_CODES = INSTITUTION_TYPES.map((t) => t.code) as [InstitutionType, ...InstitutionType[]];

/** The type code for a code or its label in English, French or German, compared without case or accents; undefined when none. */
export function institutionTypeOf(value: string): InstitutionType | undefined {
  const wanted = nameKey(value);
  return INSTITUTION_TYPES.find((t) => t.code === wanted || [t.label, t.fr, t.de].some((label) => nameKey(label) === wanted))?.code;
}

export function institutionTypeLabel(code: string): string {
  return INSTITUTION_TYPES.find((t) => t.code === code)?.label ?? code;
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

/** "AT (Austria)"; the survey codes Greece as EL and Kosovo as XK, and has "other". */
export function countryLabel(code: string): string {
  if (code === 'other') return 'Other country';
  const iso = code === 'EL' ? 'GR' : code;
  let name: string | undefined;
  try {
    name = regionNames.of(iso);
  } catch {
    name = undefined;
  }
  return name && name !== iso ? `${code} (${name})` : code;
}

/**
 * The languages whose names of the survey's countries an import accepts: the
 * EU's official languages, those of the other countries in the list
 * (Erasmus+ programme and partner countries), Luxembourgish and Romansh.
 * No name means two countries in these (checked when the table is built:
 * an ambiguous name is left out).
 */
const NAME_LANGUAGES = ['en', 'fr', 'de', 'bg', 'hr', 'cs', 'da', 'nl', 'et', 'fi', 'el', 'hu', 'ga', 'it', 'lv', 'lt', 'mt', 'pl', 'pt', 'ro', 'sk', 'sl', 'es', 'sv', 'is', 'nb', 'nn', 'sq', 'bs', 'ka', 'sr', 'sr-Latn', 'mk', 'tr', 'uk', 'lb', 'rm'];
/** Names in use that Intl does not give (it gives "Türkiye", "Czechia", "Republik Moldau"). */
const COUNTRY_ALIASES: Record<string, CountryCode> = {
  Turkey: 'TR',
  'Czech Republic': 'CZ',
  'Slovak Republic': 'SK',
  'Republic of Moldova': 'MD',
  Moldau: 'MD',
  'Republic of North Macedonia': 'MK',
};

/** The survey's "Other country" answer, as its code and in the questionnaire's three languages. */
const OTHER_COUNTRY = new Set(['other', 'other country', 'autre pays', 'anderes land']);

let countryNames: Map<string, CountryCode> | undefined;
/** Every name of every survey country in NAME_LANGUAGES and COUNTRY_ALIASES, by nameKey; built once, on first use. */
function countryByName(): Map<string, CountryCode> {
  if (countryNames) return countryNames;
  const names = new Map<string, CountryCode>();
  const ambiguous = new Set<string>();
  const add = (name: string | undefined, code: CountryCode) => {
    if (!name) return;
    const key = nameKey(name);
    if (key.length < 3 || ambiguous.has(key)) return;
    if (names.has(key) && names.get(key) !== code) {
      names.delete(key);
      ambiguous.add(key);
    } else names.set(key, code);
  };
  for (const language of NAME_LANGUAGES) {
    let display: Intl.DisplayNames;
    try {
      display = new Intl.DisplayNames([language], { type: 'region', fallback: 'none' });
    } catch {
      continue;
    }
    for (const code of COUNTRY_CODES) if (code !== 'other') add(display.of(code === 'EL' ? 'GR' : code), code);
  }
  for (const [name, code] of Object.entries(COUNTRY_ALIASES)) add(name, code);
  return (countryNames = names);
}

/**
 * The country code in a cell holding a code, a label as an export writes it
 * ("AT (Austria)", "Other country") or the country's name in one of the
 * NAME_LANGUAGES ("Österreich", "Autriche"); the cell as written when it is
 * none of these.
 */
export function countryCodeOf(value: string): string {
  const cell = value.trim();
  if (OTHER_COUNTRY.has(nameKey(cell))) return 'other';
  const code = /^([A-Za-z]{2})(\s*\(.*\))?$/.exec(cell)?.[1];
  if (code) return code.toUpperCase();
  return countryByName().get(nameKey(cell)) ?? cell;
}
