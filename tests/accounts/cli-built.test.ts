import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const launcher = join(root, 'scripts', 'run-built.mjs');

// An entry point of its own under the project, so that the test edits no real source.
const folder = `.run-built-test-${randomBytes(3).toString('hex')}`;
const entry = `${folder}/entry.ts`;
afterAll(() => {
  rmSync(join(root, folder), { recursive: true, force: true });
  for (const suffix of ['mjs', 'mjs.map', 'sources.json']) rmSync(join(root, '.build', `${folder}--entry.${suffix}`), { force: true });
});

/** Runs the entry as `npm run cli` and `npm start` run theirs. */
async function launch(...args: string[]) {
  const { stdout } = await run(process.execPath, [launcher, entry, ...args], { cwd: root });
  return JSON.parse(stdout) as { said: string; zod: string; execArgv: string[]; argv: string[]; url: string };
}

describe('npm run cli and npm start run JavaScript built from the sources', () => {
  it('runs the entry without loader hooks, with its arguments and its own location, and builds again when a source it imports changes', async () => {
    mkdirSync(join(root, folder), { recursive: true });
    writeFileSync(join(root, folder, 'words.ts'), "export const said: string = 'first';\n");
    writeFileSync(
      join(root, folder, 'entry.ts'),
      [
        "import { said } from './words.ts';",
        "import { z } from 'zod';",
        // A package resolves from the build as from the source.
        'console.log(JSON.stringify({ said, zod: typeof z.string, execArgv: process.execArgv, argv: process.argv.slice(2), url: import.meta.url }));',
        '',
      ].join('\n'),
    );
    const first = await launch('campaign:send', '--yes');
    expect(first.said).toBe('first');
    expect(first.zod).toBe('function');
    // No --import tsx: node_modules load without loader hooks.
    expect(first.execArgv).toEqual([]);
    expect(first.argv).toEqual(['campaign:send', '--yes']);
    expect(first.url).toBe(pathToFileURL(join(root, entry)).href);

    // An edit to an imported file (same length, so only its content and time differ) is never run stale.
    writeFileSync(join(root, folder, 'words.ts'), "export const said: string = 'other';\n");
    expect((await launch()).said).toBe('other');
  });

  it('names the TypeScript source and line in a stack trace, not the built file', async () => {
    mkdirSync(join(root, folder), { recursive: true });
    writeFileSync(
      join(root, folder, 'words.ts'),
      ['type Said = string;', '', 'export function fail(said: Said): never {', '  throw new Error(`failed: ${said}`);', '}', ''].join('\n'),
    );
    writeFileSync(join(root, folder, 'entry.ts'), ["import { fail } from './words.ts';", '', "fail('here');", ''].join('\n'));
    const failed = await run(process.execPath, [launcher, entry], { cwd: root }).then(
      () => undefined,
      (error: { stderr: string }) => error.stderr,
    );
    expect(failed).toContain('failed: here');
    // The throw is on line 4 of words.ts; the call on line 3 of entry.ts.
    expect(failed).toContain(`${join(folder, 'words.ts')}:4:`);
    expect(failed).toContain(`${join(folder, 'entry.ts')}:3:`);
    expect(failed).not.toMatch(/\.build\/[^\s]*\.mjs:\d+/);
  });
});
