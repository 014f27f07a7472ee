import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    // Guards against a hang only: tests wait on events and progress, never on a time budget,
    // so they pass on a busy 2-core machine too (a tsx child can take 20 s to start there).
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // expect.poll gives up after 1 s by default: a chart painted or a list drawn after a busy second would fail.
    // A minute is a guard against a hang, like the timeouts above.
    expect: { poll: { timeout: 60_000 } },
    // Two cores on the CI machine: more workers only fight over them.
    maxWorkers: 2,
    pool: 'forks',
    // On CI a JSON summary too, from which .ci/run prints the plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'node_modules/.cache/vitest-results.json' }]] : ['default'],
  },
});
