import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Language } from '../shared/languages.ts';
import type { AnswerValidation } from './answer-validator.ts';

/** Validates a submission against the questionnaire of the given strands. */
export type ValidateSubmission = (strands: readonly string[], data: unknown, language: Language) => Promise<AnswerValidation>;

export interface ValidationPool {
  validate: ValidateSubmission;
  close(): Promise<void>;
}

/**
 * Validation of a whole questionnaire takes tens of milliseconds of CPU
 * (survey-core evaluates every visibleIf and validator). Done on the event
 * loop, a burst of submissions made every other page wait seconds; in worker
 * threads the server keeps answering while submissions queue for validation.
 * Each thread builds its own questionnaires (survey-core models are not shared).
 */
export function startValidationPool(options: { threads?: number } = {}): ValidationPool {
  const threads = options.threads ?? Math.max(1, availableParallelism() - 1);
  const pool = new Piscina({
    filename: new URL('./validation.worker.mjs', import.meta.url).href,
    minThreads: 1,
    maxThreads: threads,
    // No maxQueue: a submission waits for a free thread rather than being refused (the body limit bounds each task).
    idleTimeout: 60_000,
  });
  return {
    validate: (strands, data, language) => pool.run({ strands: [...strands], data, language }),
    close: () => pool.destroy(),
  };
}
