/**
 * The SMTP sink (tests/helpers/smtp-sink.ts) as a process of its own, for the
 * benchmarks: on a core of its own, as a real relay would be, and never
 * sharing the measured sender's event loop. Started with fork(); it sends
 * { port } once listening, and answers 'report' with the messages received
 * per recipient and when the first and the last arrived (epoch ms).
 *   --delay-ms <n>  answers the end of each message's data n ms later, like a relay that scans or queues slowly
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSmtpSink } from '../tests/helpers/smtp-sink.ts';

export interface SinkReport {
  counts: Record<string, number>;
  firstAt?: number;
  lastAt?: number;
}

/** Starts the sink process; resolves with its port, a report and stop. */
export async function startSinkProcess(delayMs = 0) {
  const child = fork(fileURLToPath(import.meta.url), ['--delay-ms', String(delayMs)], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  const ask = (what: 'report' | 'mark') =>
    new Promise<SinkReport>((resolve) => {
      child.once('message', (m: SinkReport) => resolve(m));
      child.send(what);
    });
  return {
    port,
    pid: child.pid!,
    url: `smtp://127.0.0.1:${port}`,
    report: () => ask('report'),
    /** From now on, first and last arrival times count again. */
    mark: () => ask('mark'),
    stop: () => void child.kill(),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const { values } = parseArgs({ options: { 'delay-ms': { type: 'string', default: '0' } } });
  const sink = await startSmtpSink({ keepRaw: false, delayMs: Number(values['delay-ms']) });
  let firstAt: number | undefined;
  let lastAt: number | undefined;
  let seen = 0;
  // Arrival times, to the few milliseconds: enough for delays measured in seconds.
  setInterval(() => {
    if (sink.messages.length === seen) return;
    seen = sink.messages.length;
    firstAt ??= Date.now();
    lastAt = Date.now();
  }, 5).unref();
  process.send({ port: sink.port });
  process.on('message', (what) => {
    if (what === 'mark') {
      seen = sink.messages.length;
      firstAt = lastAt = undefined;
    }
    process.send!({ counts: Object.fromEntries(sink.countsByRecipient()), firstAt, lastAt } satisfies SinkReport);
  });
  process.on('disconnect', () => process.exit(0));
}
