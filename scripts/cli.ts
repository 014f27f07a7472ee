/**
 * The platform's command-line tool: `npm run cli -- <command>`. It connects
 * like the server (MONGODB_URI, else the embedded database under DATA_DIR),
 * uses the same secrets (so personal links it creates work on the server),
 * and runs one command from server/cli/commands.ts.
 */
import { createInterface } from 'node:readline';
import { ConfigError, parseConfig, sendingWarnings, smtpTimeouts } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { DataDirLockedError } from '../server/db/data-dir-lock.ts';
import { EngineMissingError } from '../server/db/embedded-engine.ts';
import { defineModels, ensureIndexes } from '../server/db/models.ts';
import { backfillCompletions } from '../server/respond/respond.service.ts';
import { COMMANDS, describeFailure, runCommand, USAGE } from '../server/cli/commands.ts';
import { secretsOf } from '../server/shared/secrets.ts';

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
    console.log(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  if (!(COMMANDS as readonly string[]).includes(argv[0]!)) {
    console.error(`Unknown command: ${argv[0]}\n\n${USAGE}`);
    return 2;
  }
  const config = parseConfig(process.env);
  if (!config.MONGODB_URI) {
    console.error(`Using the embedded database in ${config.DATA_DIR}/ferretdb (if the platform is running, stop it or set MONGODB_URI as it printed at start).`);
  }
  // campaign:send sends on its own (the platform need not run), so it warns as the platform does.
  if (argv[0] === 'campaign:send') for (const warning of sendingWarnings(config)) console.error(`Warning: ${warning}`);
  const database = await openDatabase(config);
  try {
    const models = defineModels(database.connection);
    await ensureIndexes(models);
    const marked = await backfillCompletions(models, () => new Date());
    if (marked > 0) console.error(`Marked ${marked} stored responses as completed (once per database).`);
    const secrets = secretsOf(config);
    // Ctrl-C once: stop after the batch in flight (the outbox makes a restart safe). Twice: leave at once.
    const stop = new AbortController();
    process.on('SIGINT', () => {
      if (stop.signal.aborted) return void exitWhenWritten(130);
      stop.abort();
      console.error('\nStopping after the batch in flight (Ctrl-C again to leave at once)…');
    });
    const code = await runCommand(argv, {
      models,
      now: () => new Date(),
      tokenKey: secrets.tokenKey,
      publicUrl: config.PUBLIC_URL ?? `http://localhost:${config.PORT}`,
      print: (line) => console.log(line),
      askPassword: process.stdin.isTTY ? askHidden : undefined,
      mail: {
        smtpUrl: config.SMTP_URL,
        from: config.MAIL_FROM,
        ratePerSecond: config.SEND_RATE_PER_SECOND,
        maxConnections: config.SEND_MAX_CONNECTIONS,
        maxAttempts: config.SEND_MAX_ATTEMPTS,
        leaseMs: config.SEND_LEASE_SECONDS * 1000,
        backoffMs: config.SEND_BACKOFF_SECONDS * 1000,
        outcomeWaitMs: config.SEND_OUTCOME_WAIT_MS,
        timeouts: smtpTimeouts(config),
      },
      progress: { write: (text) => process.stderr.write(text), isTTY: Boolean(process.stderr.isTTY) },
      stop: stop.signal,
    });
    return code ?? 0;
  } catch (error) {
    const failure = describeFailure(error);
    console.error(failure.message);
    return failure.code;
  } finally {
    await database.close();
  }
}

/** Reads a line from the terminal without echoing what is typed. */
function askHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const output = rl as unknown as { _writeToOutput: (text: string) => void };
    let asked = false;
    output._writeToOutput = (text: string) => {
      if (!asked) {
        process.stdout.write(text);
        asked = true;
      }
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer);
    });
  });
}

/**
 * Leaves with `code` once everything printed has been handed to stdout and
 * stderr. Written to a pipe (another program, a test, `| tee`), output goes
 * out asynchronously, and process.exit drops whatever the pipe has not taken
 * yet: the end of a long report, or the last line before an exit. A write's
 * callback comes after every earlier write to that stream is done. The exit
 * itself stays explicit: a handle left open (a driver's timer) must not keep
 * the tool running.
 */
async function exitWhenWritten(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([process.stdout, process.stderr].map((stream) => new Promise<void>((resolve) => stream.write('', () => resolve()))));
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => exitWhenWritten(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof EngineMissingError || error instanceof DataDirLockedError) console.error(error.message);
    else console.error('The command-line tool could not start:', error);
    return exitWhenWritten(1);
  },
);
