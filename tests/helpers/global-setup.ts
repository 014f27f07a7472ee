import { mkdtempSync, rmSync } from 'node:fs';
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
  let dataDir: string | undefined;
  let uri = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (!uri) {
    dataDir = mkdtempSync(join(tmpdir(), 'vet-survey-test-'));
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  project.provide('mongoUri', uri);
  return async () => {
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
