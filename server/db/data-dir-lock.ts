import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';

/** Who holds the embedded database's data directory. */
export interface LockOwner {
  pid: number;
  host: string;
  /** "the platform (npm start)", "npm run seed:demo", … */
  program: string;
  startedAt: string;
  /** The engine's address, once it listens: other processes connect there with MONGODB_URI. */
  uri?: string;
}

/** Refusal to open a data directory whose engine another live process runs. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly owner: LockOwner,
  ) {
    const since = owner.startedAt.replace('T', ' ').slice(0, 16);
    const instead = owner.uri
      ? `While it runs, use its database through it instead:\n  MONGODB_URI=${owner.uri} ${thisCommand()}`
      : `It is still starting: its address is the MONGODB_URI line it prints at start; run\n  MONGODB_URI=<that address> ${thisCommand()}`;
    super(
      `The embedded database in ${dataDir} is in use by ${owner.program} (pid ${owner.pid} on ${owner.host}, since ${since} UTC).\n` +
        `Only one process can open it.\n${instead}\nor stop ${owner.program} first.`,
    );
  }
}

const LOCK_FILE = 'owner.lock';

/**
 * Takes the data directory for this process: an exclusive lock file holding
 * the owner's pid, program and (once known) the engine's address. Created
 * complete under a temporary name and hard-linked into place, which fails if
 * the file exists, so a reader never sees half a lock. A lock whose pid is no
 * longer alive on this host (a crash, kill -9) is taken over: moved aside and
 * checked that what was moved is the dead owner's, so two processes taking
 * over at once cannot both win.
 */
export function lockDataDir(dataDir: string, program = describeThisProgram()) {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  const mine: LockOwner = { pid: process.pid, host: hostname(), program, startedAt: new Date().toISOString() };
  const write = (owner: LockOwner, replace: boolean) => {
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(owner));
    try {
      if (replace) renameSync(temp, path);
      else linkSync(temp, path);
    } finally {
      if (!replace) unlinkSync(temp);
    }
  };
  for (let attempt = 0; ; attempt++) {
    try {
      write(mine, false);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw error;
    }
    const owner = readOwner(path);
    if (!owner) continue; // removed in the meantime: try again
    if (isAlive(owner)) throw new DataDirLockedError(dataDir, owner);
    const aside = `${path}.stale.${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      continue;
    }
    const moved = readOwner(aside);
    if (moved && moved.pid !== owner.pid && isAlive(moved)) {
      // Another process took over between our read and our move: give it its lock back.
      try {
        linkSync(aside, path);
      } finally {
        unlinkSync(aside);
      }
      throw new DataDirLockedError(dataDir, moved);
    }
    unlinkSync(aside);
  }
  const release = () => {
    try {
      if (readOwner(path)?.pid === process.pid) unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  };
  // A normal exit, even without close(), leaves no lock behind; a crash leaves a stale one, taken over next time.
  process.once('exit', release);
  return {
    /** Records the engine's address in the lock, for the refusal message of the next process. */
    setAddress(uri: string) {
      write({ ...mine, uri }, true);
    },
    release() {
      process.off('exit', release);
      release();
    },
  };
}

export function readOwner(path: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return typeof owner.pid === 'number' ? owner : undefined;
  } catch {
    return undefined;
  }
}

/** A pid on another host cannot be checked: it counts as alive. */
function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeThisProgram(): string {
  const script = basename(process.argv[1] ?? '');
  if (script === 'index.ts') return 'the platform (npm start)';
  if (script === 'cli.ts') return 'the command-line tool (npm run cli)';
  if (script === 'seed-demo.ts') return 'npm run seed:demo';
  return `${script || 'a process'}`;
}

/** The command the user ran, to repeat with MONGODB_URI in front. */
function thisCommand(): string {
  const script = basename(process.argv[1] ?? '');
  if (script === 'cli.ts') return `npm run cli -- ${process.argv.slice(2).join(' ')}`.trim();
  if (script === 'seed-demo.ts') return `npm run seed:demo${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  if (script === 'index.ts') return 'npm start';
  return 'npm run cli -- <command>';
}
