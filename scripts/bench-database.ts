/**
 * A fresh database for a benchmark: on MONGODB_URI's server if set, else an
 * embedded FerretDB in a temporary directory, under a database name of its
 * own; close() drops it and stops what was started.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../server/db/connection.ts';
import { startEmbeddedEngine } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes, type Models } from '../server/db/models.ts';

export interface BenchDatabase {
  models: Models;
  /** What it runs on, for the benchmark's first line. */
  engine: string;
  close(): Promise<void>;
}

export async function benchDatabase(name: string): Promise<BenchDatabase> {
  let dataDir: string | undefined;
  let engine: Awaited<ReturnType<typeof startEmbeddedEngine>> | undefined;
  let base = process.env.MONGODB_URI?.replace(/\/[^/]*$/, '');
  if (!base) {
    dataDir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
    engine = await startEmbeddedEngine({ dataDir });
    base = engine.uri;
  }
  const connection = await connect(`${base}/bench_${name}_${randomBytes(4).toString('hex')}`);
  const models = defineModels(connection);
  await ensureIndexes(models);
  return {
    models,
    engine: engine ? 'embedded FerretDB (SQLite)' : 'MongoDB (MONGODB_URI)',
    async close() {
      await connection.dropDatabase().catch(() => undefined);
      await connection.close();
      await engine?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
