import mongoose from 'mongoose';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Logger } from '../shared/logger.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { startEmbeddedEngine, type EmbeddedEngine } from './embedded-engine.ts';

export interface Database {
  connection: mongoose.Connection;
  /** True when the platform runs on its own embedded FerretDB. */
  embedded: boolean;
  /** The address connected to (for the embedded engine, one that other processes such as the CLI can use). */
  uri: string;
  close(): Promise<void>;
}

/**
 * Connects to MONGODB_URI, or starts the embedded engine under DATA_DIR on
 * ENGINE_PORT and connects to it. Only one process may run the engine on a
 * data directory (two would corrupt its SQLite files and lose writes): the
 * directory is locked first, and a second process is refused with a
 * DataDirLockedError naming the owner and the MONGODB_URI line to use instead.
 */
export async function openDatabase(config: Pick<Config, 'MONGODB_URI' | 'DATA_DIR' | 'ENGINE_PORT'>, logger?: Logger): Promise<Database> {
  let engine: EmbeddedEngine | undefined;
  let lock: ReturnType<typeof lockDataDir> | undefined;
  let uri = config.MONGODB_URI;
  if (!uri) {
    const dataDir = join(config.DATA_DIR, 'ferretdb');
    lock = lockDataDir(dataDir);
    try {
      // Normally built on `npm install`; a checkout whose install skipped it (or an edited launcher) builds here.
      const { buildEngine, engineIsCurrent } = await import('../../scripts/build-engine.mjs');
      if (!engineIsCurrent()) buildEngine();
      // The engine logs only errors (e.g. its wire guard closing a connection whose replies fell out of order).
      engine = await startEmbeddedEngine({ dataDir, port: config.ENGINE_PORT, onLog: (line) => logger?.error({ engine: line }, 'embedded database') });
    } catch (error) {
      lock.release();
      throw error;
    }
    uri = `${engine.uri}/vet-mobility`;
    lock.setAddress(uri);
  }
  const connection = await connect(uri);
  return {
    connection,
    embedded: engine !== undefined,
    uri,
    async close() {
      await connection.close();
      await engine?.stop();
      lock?.release();
    },
  };
}

/** `monitorCommands` lets a benchmark time each round trip (the client then emits commandStarted and commandSucceeded). */
export async function connect(uri: string, options: { monitorCommands?: boolean } = {}): Promise<mongoose.Connection> {
  const connection = mongoose.createConnection(uri, {
    // FerretDB v1 has no retryable writes or sessions across statements.
    retryWrites: false,
    autoIndex: false,
    serverSelectionTimeoutMS: 10_000,
    monitorCommands: options.monitorCommands ?? false,
  });
  await connection.asPromise();
  return connection;
}
