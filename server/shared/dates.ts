import type { Language } from './languages.ts';

/**
 * Every date the platform shows, in one format: "31 January 2027" (in the
 * reader's language), always in UTC, the zone campaign dates are chosen in.
 * Never a raw JavaScript date.
 */
export function formatDay(date: Date, language: Language = 'en'): string {
  return dayFormat(language).format(date);
}

/** One formatter per language: making one is costly, and the sender writes a date into every email. */
const dayFormats = new Map<Language, Intl.DateTimeFormat>();
function dayFormat(language: Language): Intl.DateTimeFormat {
  let format = dayFormats.get(language);
  if (!format) {
    format = new Intl.DateTimeFormat(language === 'en' ? 'en-GB' : language, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
    dayFormats.set(language, format);
  }
  return format;
}

/** A moment: "31 January 2027, 14:05 UTC". */
export function formatDateTime(date: Date, language: Language = 'en'): string {
  const time = date.toLocaleTimeString(language === 'en' ? 'en-GB' : language, { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: 'UTC' });
  return `${formatDay(date, language)}, ${time} UTC`;
}

/**
 * A campaign's close is stored as the first moment it is closed (midnight UTC
 * after the last day to answer); people are told the last day, the day before.
 */
export function formatLastDay(closesAt: Date, language: Language = 'en'): string {
  return formatDay(new Date(closesAt.getTime() - 1), language);
}
