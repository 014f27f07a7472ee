import type { JsonMetadata } from 'survey-core';

export interface SurveyCustomProperty {
  name: string;
  type: 'string';
  category: 'general';
}

/**
 * Properties every question in surveys/ carries beyond SurveyJS's own: the
 * strand it belongs to and the indicator it feeds. The server and the browser
 * register this same list (the browser receives it as JSON), so a definition
 * loads identically on both sides.
 */
export const SURVEY_CUSTOM_PROPERTIES: readonly SurveyCustomProperty[] = Object.freeze([
  Object.freeze({ name: 'strand', type: 'string', category: 'general' } as const),
  Object.freeze({ name: 'indicator', type: 'string', category: 'general' } as const),
]);

/** Adds the custom properties to SurveyJS's `question` class; calling it again changes nothing. */
export function registerSurveyProperties(serializer: JsonMetadata): void {
  for (const property of SURVEY_CUSTOM_PROPERTIES) {
    if (serializer.findProperty('question', property.name)) continue;
    serializer.addProperty('question', { ...property });
  }
}
