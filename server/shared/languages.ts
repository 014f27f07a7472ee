/** Languages every survey text, page and email exists in. */
export const LANGUAGES = ['en', 'fr', 'de'] as const;
export type Language = (typeof LANGUAGES)[number];

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (LANGUAGES as readonly string[]).includes(value);
}

export const LANGUAGE_NAMES: Record<Language, string> = { en: 'English', fr: 'Français', de: 'Deutsch' };

const englishNames = new Intl.DisplayNames(['en'], { type: 'language' });

/** A language's name in English, for coordinators' pages and exports: "French". */
export function languageLabel(code: string): string {
  return englishNames.of(code) ?? code;
}

/** The language code in a cell holding a code or its English name, as an export writes it. */
export function languageCodeOf(value: string): string {
  const cell = value.trim().toLowerCase();
  return LANGUAGES.find((code) => languageLabel(code).toLowerCase() === cell) ?? cell;
}
