import request from 'supertest';
import type { Express } from 'express';
import { csrfToken } from '../../server/shared/csrf.ts';
import type { TestPlatform } from './test-platform.ts';

/** A respondent holding a personal link: what the questionnaire page's script does, over HTTP. */
export function respondent(platform: TestPlatform, path: string, tokenHash: string) {
  const app: Express = platform.app;
  const csrf = csrfToken(platform.sessionSecret, tokenHash);
  // A string body is sent as it is (raw JSON text); anything else as JSON.
  const text = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));
  return {
    csrf,
    open: (query = '') => request(app).get(`${path}${query}`),
    saveDraft: (body: unknown) =>
      request(app).put(`${path}/draft`).set('X-CSRF-Token', csrf).set('Content-Type', 'application/json').send(text(body)),
    submit: (body: unknown) =>
      request(app).post(`${path}/submit`).set('X-CSRF-Token', csrf).set('Content-Type', 'application/json').send(text(body)),
  };
}

/** The JSON the questionnaire page hands to its script. */
export function bootOf(html: string): {
  json: { pages: unknown[] };
  data: Record<string, unknown>;
  pageNo: number;
  revision: number;
  language: string;
  version: string;
} {
  const match = /<script type="application\/json" id="boot">([\s\S]*?)<\/script>/.exec(html);
  if (!match) throw new Error('the page has no boot data');
  return JSON.parse(match[1]!);
}

type Element = Record<string, any>;

/** Every question of a SurveyJS definition, panels flattened. */
export function questionsOf(json: { pages: unknown[] }): Element[] {
  const out: Element[] = [];
  const walk = (elements: Element[] | undefined) => {
    for (const element of elements ?? []) {
      if (element.type === 'panel' || element.type === 'paneldynamic') walk(element.elements ?? element.templateElements);
      else out.push(element);
    }
  };
  for (const page of json.pages as Element[]) walk(page.elements);
  return out;
}
