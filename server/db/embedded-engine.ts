import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ENGINE_PATH = join(projectRoot, '.engine', 'ferretdb-embedded');

export interface EmbeddedEngine {
  /** mongodb:// address of the running engine, without a database name. */
  uri: string;
  /** Process id of the engine. */
  pid: number;
  /** Stops the engine and waits for it to exit. */
  stop(): Promise<void>;
}

/** How the engine ended when nobody asked it to stop, with what it printed last. */
export interface EngineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The first and the last lines the engine wrote on stderr (a Go crash starts with its reason). */
  log: string[];
}

export class EngineMissingError extends Error {
  constructor() {
    super(
      `The embedded database engine is not built (${ENGINE_PATH}).\n` +
        'Run `npm run build:engine` (needs Go 1.22+), or set MONGODB_URI to a MongoDB server.',
    );
  }
}

/**
 * Starts FerretDB (SQLite backend) as a child process keeping its files in
 * `dataDir`. The child stops when this process exits in any way: it watches
 * its stdin, which is a pipe from us that the kernel closes when we die.
 */
export async function startEmbeddedEngine(options: {
  dataDir: string;
  port?: number;
  onLog?: (line: string) => void;
  /** Called when the engine exits after it started and before stop() was called. */
  onUnexpectedExit?: (exit: EngineExit) => void;
}): Promise<EmbeddedEngine> {
  if (!existsSync(ENGINE_PATH)) throw new EngineMissingError();
  mkdirSync(options.dataDir, { recursive: true });

  const child = spawn(ENGINE_PATH, ['-listen', `127.0.0.1:${options.port ?? 0}`, '-dir', options.dataDir], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const firstLines: string[] = [];
  const stderr: string[] = [];
  let skipped = false;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (firstLines.length < 20) firstLines.push(line);
    else {
      stderr.push(line);
      if (stderr.length > 50) (stderr.shift(), (skipped = true));
    }
    options.onLog?.(line);
  });
  const logTail = () => [...firstLines, ...(skipped ? ['…'] : []), ...stderr];

  const uri = await new Promise<string>((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error('the embedded database did not start within 30 s')), 30_000);
    function fail(error: Error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${logTail().join('\n')}`));
    }
    lines.on('line', (line) => {
      const match = /^READY (mongodb:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolvePromise(match[1]!.replace(/\/$/, ''));
      }
    });
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the embedded database exited with code ${code}`)));
  });

  let exited = false;
  let stopping = false;
  child.once('exit', () => (exited = true));
  // 'close' comes once stderr has been read to its end, with the last lines of a crash.
  child.once('close', (code, signal) => {
    if (!stopping) options.onUnexpectedExit?.({ code, signal, log: logTail() });
  });
  // Belt and braces beside the stdin watch: a normal exit of this process kills the child at once.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  return {
    uri,
    pid: child.pid!,
    stop: () => {
      stopping = true;
      return stopChild(child, () => exited, killOnExit);
    },
  };
}

function stopChild(child: ChildProcess, hasExited: () => boolean, killOnExit: () => void): Promise<void> {
  process.off('exit', killOnExit);
  if (hasExited()) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolvePromise();
    });
    child.kill('SIGTERM');
  });
}
