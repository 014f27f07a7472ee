import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedEngine, type EmbeddedEngine } from '../../server/db/embedded-engine.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
  }
}

/**
 * One database server for the whole run: the MongoDB in MONGODB_URI when
 * given (the same suite then runs against a real MongoDB), else the embedded
 * FerretDB in a temporary directory on a free port. Each test file works in a
 * database of its own on it.
 */
export default async function setup(project: TestProject) {
  let engine: EmbeddedEngine | undefined;
  let engineDied: string | undefined;
  let dataDir: string | undefined;
  let uri = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (!uri) {
    dataDir = mkdtempSync(join(tmpdir(), 'vet-survey-test-'));
    engine = await startEmbeddedEngine({
      dataDir,
      // Every test file after this point fails to connect: say why once, loudly, before they do.
      onUnexpectedExit: ({ code, signal, log }) => {
        engineDied =
          `The test run's embedded database exited at ${new Date().toISOString()} (code ${code}, signal ${signal}) while tests were running. It printed:\n` +
          (log.length ? log.join('\n') : '(nothing)');
        console.error(`\n${engineDied}`);
      },
    });
    uri = engine.uri;
  }
  project.provide('mongoUri', uri);
  return async () => {
    // Again at the end, where a CI log's tail shows it, below the failures it caused.
    if (engineDied) console.error(`\n${engineDied}`);
    // A database still there was not dropped, or was made again by a query after its drop (test-platform.ts dropTestDatabase says why that is dangerous).
    const left = dataDir ? readdirSync(dataDir).filter((file) => file.endsWith('.sqlite')) : [];
    if (left.length > 0) console.error(`\nTest databases left at the end of the run (each names its test file): ${left.map((file) => file.replace(/\.sqlite$/, '')).join(', ')}`);
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
