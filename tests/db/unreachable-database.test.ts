import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** A port nothing listens on: taken from the system, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('a MONGODB_URI where no database answers', () => {
  it('the command-line tool says so in plain words, with the password masked and what to check, and exits 1', async () => {
    const port = await closedPort();
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', MONGODB_URI: `mongodb://tool:s3cret-word@127.0.0.1:${port}/vet-mobility` };
    const failed = await run(join('node_modules', '.bin', 'tsx'), ['scripts/cli.ts', 'users:list'], { env, timeout: 60_000 }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed!.stderr).toContain(`No database answers at MONGODB_URI (mongodb://tool:***@127.0.0.1:${port}/vet-mobility): connect ECONNREFUSED 127.0.0.1:${port}.`);
    expect(failed!.stderr).toContain('use the MONGODB_URI line the platform printed at its last start');
    expect(failed!.stderr).not.toContain('s3cret-word');
    // One message, not the driver's error with its stack.
    expect(failed!.stderr).not.toMatch(/MongooseServerSelectionError|TopologyDescription|\n\s+at /);
  }, 60_000);
});
