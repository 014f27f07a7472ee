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

export const INSTITUTION_TYPES = [
  { code: 'ivet_school', label: 'School-based initial VET' },
  { code: 'ivet_dual', label: 'Dual or apprenticeship-based initial VET' },
  { code: 'cvet_adult', label: 'Continuing VET or adult education provider' },
  { code: 'company_centre', label: 'Company training centre' },
  { code: 'chamber_sector', label: 'Chamber or sectoral body' },
  { code: 'post_secondary', label: 'Post-secondary VET provider' },
] as const;
export type InstitutionType = (typeof INSTITUTION_TYPES)[number]['code'];
export const INSTITUTION_TYPE_CODES = INSTITUTION_TYPES.map((t) => t.code) as [InstitutionType, ...InstitutionType[]];

/** The type code for a code or its English label, compared without case; undefined when neither. */
export function institutionTypeOf(value: string): InstitutionType | undefined {
  const wanted = value.trim().toLowerCase();
  return INSTITUTION_TYPES.find((t) => t.code === wanted || t.label.toLowerCase() === wanted)?.code;
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

/** The country code in a cell holding a code or a label ("AT", "AT (Austria)", "Other country"), as an export writes it. */
export function countryCodeOf(value: string): string {
  const cell = value.trim();
  if (/^other( country)?$/i.test(cell)) return 'other';
  return (/^([A-Za-z]{2})\s*\(.*\)$/.exec(cell)?.[1] ?? cell).toUpperCase();
}
