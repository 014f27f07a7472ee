import express, { type RequestHandler } from 'express';

/**
 * Deepest nesting of arrays and objects a JSON body may have. Survey answers
 * nest a few levels (a dynamic panel of matrix rows); a body nested deeper is
 * refused before it is parsed, because recursive code further on (stringify,
 * validation) would overflow the stack on it.
 */
export const MAX_JSON_DEPTH = 32;

/** The JSON body parser for the respondent's routes: strict, size-limited, depth-limited. */
export function jsonBody(limit: number): RequestHandler {
  return express.json({
    limit,
    strict: true,
    verify: (_req, _res, body) => {
      if (jsonDepth(body) > MAX_JSON_DEPTH) {
        throw Object.assign(new Error(`The request is nested more than ${MAX_JSON_DEPTH} levels deep.`), { status: 400, type: 'entity.too.deep' });
      }
    },
  });
}

/** Nesting depth of a JSON text, counted without parsing (brackets inside strings do not count). */
export function jsonDepth(body: Buffer): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < body.length; i += 1) {
    const byte = body[i];
    if (inString) {
      if (byte === 0x5c) i += 1; // a backslash escapes the next character
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b || byte === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (byte === 0x7d || byte === 0x5d) depth -= 1;
  }
  return deepest;
}
