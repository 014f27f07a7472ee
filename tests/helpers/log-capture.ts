import { createLogger, type Logger } from '../../server/shared/logger.ts';

export interface CapturedLog {
  logger: Logger;
  /** Every line written, parsed. */
  lines: Array<Record<string, any>>;
  /** The raw text of every line, to search for what must never be logged. */
  text(): string;
  /** Lines at "error" level or above. */
  errors(): Array<Record<string, any>>;
}

/** A real pino logger writing JSON lines into memory; error lines are also printed, so a failing test shows them. */
export function captureLog(level = 'info'): CapturedLog {
  const raw: string[] = [];
  const logger = createLogger({
    level,
    pretty: false,
    destination: {
      write(line: string) {
        raw.push(line);
        if (JSON.parse(line).level >= 50) process.stderr.write(line);
      },
    },
  });
  const lines = () => raw.map((line) => JSON.parse(line) as Record<string, any>);
  return {
    logger,
    get lines() {
      return lines();
    },
    text: () => raw.join(''),
    errors: () => lines().filter((line) => line.level >= 50),
  };
}
