import mongoose from 'mongoose';
import { join } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import type { Logger } from '../shared/logger.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { startEmbeddedEngine, type EmbeddedEngine, type EngineExit } from './embedded-engine.ts';

export interface Database {
  connection: mongoose.Connection;
  /** True when the platform runs on its own embedded FerretDB. */
  embedded: boolean;
  /** The address connected to (for the embedded engine, one that other processes such as the CLI can use). */
  uri: string;
  /** The embedded engine's process id (not set on MONGODB_URI). */
  enginePid?: number;
  close(): Promise<void>;
}

/**
 * Connects to MONGODB_URI, or starts the embedded engine under DATA_DIR on
 * ENGINE_PORT and connects to it. Only one process may run the engine on a
 * data directory (two would corrupt its SQLite files and lose writes): the
 * directory is locked first, and a second process is refused with a
 * DataDirLockedError naming the owner and the MONGODB_URI line to use instead.
 */
export async function openDatabase(
  config: Pick<Config, 'MONGODB_URI' | 'DATA_DIR' | 'ENGINE_PORT'>,
  logger?: Logger,
  /** Called when the embedded engine stops by itself (a crash): nothing can be read or written any more. */
  onEngineExit?: (exit: EngineExit) => void,
): Promise<Database> {
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
      engine = await startEmbeddedEngine({
        dataDir,
        port: config.ENGINE_PORT,
        onLog: (line) => logger?.error({ engine: line }, 'embedded database'),
        onUnexpectedExit: (exit) => {
          logger?.fatal({ code: exit.code, signal: exit.signal, printed: exit.log.slice(0, 3) }, 'the embedded database stopped by itself');
          onEngineExit?.(exit);
        },
      });
    } catch (error) {
      lock.release();
      throw error;
    }
    uri = `${engine.uri}/vet-mobility`;
    lock.setAddress(uri);
  }
  let connection: mongoose.Connection;
  try {
    connection = await connect(uri);
  } catch (error) {
    await engine?.stop();
    lock?.release();
    if (config.MONGODB_URI && error instanceof mongoose.Error.MongooseServerSelectionError) throw new DatabaseUnreachableError(uri, error.message);
    throw error;
  }
  return {
    connection,
    embedded: engine !== undefined,
    uri,
    enginePid: engine?.pid,
    async close() {
      await connection.close();
      await engine?.stop();
      lock?.release();
    },
  };
}

/**
 * No database answered at MONGODB_URI: a message that says what to check, for
 * every entry point to print as it prints a ConfigError, instead of the
 * driver's error. The address is shown with its password masked.
 */
export class DatabaseUnreachableError extends ConfigError {
  constructor(uri: string, reason: string) {
    const shown = uri.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    super(
      `No database answers at MONGODB_URI (${shown}): ${reason}.\n` +
        'Check the address and that the database is running. The embedded database of a running platform takes a new port at each start: ' +
        'use the MONGODB_URI line the platform printed at its last start, or leave MONGODB_URI unset while no platform runs on the same DATA_DIR.',
    );
  }
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
