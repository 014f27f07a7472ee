import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../server/config.ts';
import { openDatabase } from '../../server/db/connection.ts';
import { freePort } from '../helpers/free-port.ts';
import { startEmbeddedEngine, type EngineExit } from '../../server/db/embedded-engine.ts';
import { createLogger } from '../../server/shared/logger.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'engine-test-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, ms: number) {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  return check();
}

describe.skipIf(Boolean(process.env.MONGODB_URI))('the embedded database engine', () => {
  it('when it is started a second time on the same directory, it finds the data of the first', async () => {
    const dataDir = tempDir();
    const first = await startEmbeddedEngine({ dataDir });
    const a = await mongoose.createConnection(`${first.uri}/reuse`).asPromise();
    await a.db!.collection('notes').insertOne({ _id: 'kept' as never, text: 'still here' });
    await a.close();
    await first.stop();

    const second = await startEmbeddedEngine({ dataDir });
    const b = await mongoose.createConnection(`${second.uri}/reuse`).asPromise();
    expect(await b.db!.collection('notes').findOne({ _id: 'kept' as never })).toMatchObject({ text: 'still here' });
    await b.close();
    await second.stop();
  });

  it('when a write asks for no acknowledgement (w: 0), later commands on the same connection still get their own answers', async () => {
    // FerretDB v1 answers such a write anyway; without the launcher's wire guard the next find got the
    // delete's reply ("BSON element cursor is missing") and the one after it another collection's document.
    const engine = await startEmbeddedEngine({ dataDir: tempDir() });
    const connection = await mongoose.createConnection(`${engine.uri}/unacknowledged`, { maxPoolSize: 1 }).asPromise();
    const db = connection.db!;
    await db.collection('a').insertOne({ _id: 'a1' as never, from: 'a' });
    await db.collection('b').insertOne({ _id: 'b1' as never, from: 'b' });
    await db.collection('sessions').deleteMany({ expires: { $lt: new Date() } }, { writeConcern: { w: 0 } });
    expect(await db.collection('a').findOne({})).toEqual({ _id: 'a1', from: 'a' });
    expect(await db.collection('b').findOne({})).toEqual({ _id: 'b1', from: 'b' });
    expect(await db.collection('a').countDocuments()).toBe(1);
    await connection.close();
    await engine.stop();
  });

  it('every collection gets an index that FerretDB uses for look-ups by _id, also collections created later', async () => {
    const dataDir = tempDir();
    const plan = async (db: mongoose.mongo.Db) => {
      // A real look-up first: EXPLAIN alone opens no transaction, so a connection would plan with the schema it last read.
      await db.collection('responses').findOne({ _id: 'r7' as never });
      return JSON.stringify((await db.command({ explain: { find: 'responses', filter: { _id: 'r7' } } })).queryPlanner);
    };
    const engine = await startEmbeddedEngine({ dataDir });
    const connection = await mongoose.createConnection(`${engine.uri}/indexed`).asPromise();
    // Enough rows that SQLite's planner prefers an index to a scan.
    await connection.db!.collection('responses').insertMany(Array.from({ length: 200 }, (_, i) => ({ _id: `r${i}`, n: i })) as never[]);
    // The launcher notices new collections by polling; wait for the index rather than for a fixed time.
    await expect.poll(() => plan(connection.db!), { timeout: 240_000, interval: 200 }).toMatch(/USING INDEX \S+_ferretdb_id_path/);
    await connection.close();
    await engine.stop();

    // After a restart the index is there before the first request.
    const again = await startEmbeddedEngine({ dataDir });
    const reconnected = await mongoose.createConnection(`${again.uri}/indexed`).asPromise();
    expect(await plan(reconnected.db!)).toMatch(/USING INDEX \S+_ferretdb_id_path/);
    await reconnected.close();
    await again.stop();
  });

  it('when ENGINE_PORT is set, the platform starts its embedded engine on that port', async () => {
    const port = await freePort();
    const database = await openDatabase(parseConfig({ DATA_DIR: tempDir(), ENGINE_PORT: String(port) }));
    try {
      expect(database.embedded).toBe(true);
      expect(new URL(database.uri).port).toBe(String(port));
      await database.connection.db!.collection('notes').insertOne({ text: 'on the chosen port' });
      const direct = await mongoose.createConnection(`mongodb://127.0.0.1:${port}/vet-mobility`).asPromise();
      expect(await direct.db!.collection('notes').findOne({})).toMatchObject({ text: 'on the chosen port' });
      await direct.close();
    } finally {
      await database.close();
    }
  });

  it('when the engine stops by itself, its parent is told how and what it printed; a stop it asked for is not reported', async () => {
    const exits: EngineExit[] = [];
    const asked = await startEmbeddedEngine({ dataDir: tempDir(), onUnexpectedExit: (exit) => exits.push(exit) });
    await asked.stop();

    let reported!: (exit: EngineExit) => void;
    const exited = new Promise<EngineExit>((resolve) => (reported = resolve));
    const engine = await startEmbeddedEngine({ dataDir: tempDir(), onUnexpectedExit: (exit) => reported(exit) });
    process.kill(engine.pid, 'SIGTERM');
    const exit = await exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // The engine says why it stops, whatever its log level: a signal, its parent gone, or (a crash) Go's own trace.
    expect(exit.log).toContain('ferretdb-embedded: stopping: received terminated');
    expect(exits).toEqual([]);
  });

  it('when the embedded engine dies under the platform, the platform logs it as fatal and is told, to stop', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', pretty: false, destination: { write: (line: string) => void lines.push(line) } });
    let told!: (exit: EngineExit) => void;
    const exited = new Promise<EngineExit>((resolve) => (told = resolve));
    const database = await openDatabase(parseConfig({ DATA_DIR: tempDir() }), logger, (exit) => told(exit));
    try {
      process.kill(database.enginePid!, 'SIGKILL');
      expect(await exited).toMatchObject({ code: null, signal: 'SIGKILL' });
      const fatal = lines.map((line) => JSON.parse(line) as { level: number; msg: string; signal?: string }).find((entry) => entry.level === 60);
      expect(fatal).toMatchObject({ msg: 'the embedded database stopped by itself', signal: 'SIGKILL' });
    } finally {
      await database.close();
    }
  });

  it('when the platform process is killed with SIGKILL, the engine stops too', async () => {
    const dataDir = tempDir();
    const script = `
      import { startEmbeddedEngine } from './server/db/embedded-engine.ts';
      const engine = await startEmbeddedEngine({ dataDir: ${JSON.stringify(dataDir)} });
      console.log('ENGINE ' + engine.pid);
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    const enginePid = await new Promise<number>((resolve, reject) => {
      parent.stdout!.on('data', (chunk: Buffer) => {
        const match = /ENGINE (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      parent.once('exit', () => reject(new Error('the parent exited before the engine started')));
    });
    expect(alive(enginePid)).toBe(true);
    parent.kill('SIGKILL');
    expect(await waitUntil(() => !alive(enginePid), 10_000)).toBe(true);
  });
});

describe('configuration', () => {
  it('when a variable is invalid, start-up fails with a message naming it', () => {
    expect(() => parseConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => parseConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseConfig({ MONGODB_URI: 'postgres://x' })).toThrow(/MONGODB_URI: must start with mongodb:\/\//);
  });

  it('when production lacks its secrets, start-up names every missing variable', () => {
    const error = (() => {
      try {
        parseConfig({ NODE_ENV: 'production' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toMatch(/SESSION_SECRET/);
    expect(error?.message).toMatch(/TOKEN_KEY/);
    expect(error?.message).toMatch(/MONGODB_URI/);
  });

  it('when nothing is set, the defaults start an embedded platform on port 3000', () => {
    expect(parseConfig({})).toMatchObject({ PORT: 3000, DATA_DIR: 'data', MIN_CELL_INSTITUTIONS: 5, MIN_CELL_RESPONDENTS: 10 });
  });
});
