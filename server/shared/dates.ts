import type { Language } from './languages.ts';

/**
 * Every date the platform shows, in one format: "31 January 2027" (in the
 * reader's language), always in UTC, the zone campaign dates are chosen in.
 * Never a raw JavaScript date.
 */
export function formatDay(date: Date, language: Language = 'en'): string {
  return date.toLocaleDateString(language === 'en' ? 'en-GB' : language, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
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
