import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../server/db/connection.ts';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'lock-test-'));
  dirs.push(dir);
  return dir;
};

/** Runs a script of the platform as a second process on the data directory, with no MONGODB_URI, as its npm command does (built, scripts/run-built.mjs). */
async function second(dataDir: string, script: string, ...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', DATA_DIR: dataDir };
  delete env.MONGODB_URI;
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/run-built.mjs', script, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe.skipIf(Boolean(process.env.MONGODB_URI))('one process per embedded database', () => {
  it('a second process opening the same data directory is refused with the owner and the MONGODB_URI line to use', async () => {
    const dataDir = tempDir();
    const database = await openDatabase({ DATA_DIR: dataDir, MONGODB_URI: undefined, ENGINE_PORT: 0 });
    try {
      const lock = JSON.parse(readFileSync(join(dataDir, 'ferretdb', 'owner.lock'), 'utf8'));
      expect(lock).toMatchObject({ pid: process.pid, uri: database.uri });

      const cli = await second(dataDir, 'scripts/cli.ts', 'users:list');
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain(`The embedded database in ${join(dataDir, 'ferretdb')} is in use by`);
      expect(cli.stderr).toContain(`(pid ${process.pid} on ${hostname()}`);
      expect(cli.stderr).toContain(`MONGODB_URI=${database.uri} npm run cli -- users:list`);

      const seed = await second(dataDir, 'scripts/seed-demo.ts');
      expect(seed.code).toBe(1);
      expect(seed.stderr).toContain(`MONGODB_URI=${database.uri} npm run seed:demo`);
      // The refused processes wrote nothing and the owner's data is intact.
      expect(await database.connection.db!.collection('institutions').countDocuments()).toBe(0);
    } finally {
      await database.close();
    }
    expect(() => readFileSync(join(dataDir, 'ferretdb', 'owner.lock'))).toThrow();
  });

  it('a lock left by a process that died is taken over', async () => {
    const dataDir = tempDir();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(tempDirOf(dataDir), 'owner.lock'), JSON.stringify({ pid: dead, host: hostname(), program: 'the platform (npm start)', startedAt: new Date().toISOString(), uri: 'mongodb://127.0.0.1:1/vet-mobility' }));
    const database = await openDatabase({ DATA_DIR: dataDir, MONGODB_URI: undefined, ENGINE_PORT: 0 });
    try {
      expect(JSON.parse(readFileSync(join(dataDir, 'ferretdb', 'owner.lock'), 'utf8')).pid).toBe(process.pid);
      await database.connection.db!.collection('notes').insertOne({ text: 'written after the take-over' });
    } finally {
      await database.close();
    }
  });
});

function tempDirOf(dataDir: string) {
  const dir = join(dataDir, 'ferretdb');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
