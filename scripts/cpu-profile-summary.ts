/**
 * Where a process's CPU went during a profile (a V8 .cpuprofile, as
 * `node --cpu-prof` or the inspector's Profiler writes it), by part: the
 * SMTP client (nodemailer), the database driver (mongodb, mongoose, bson),
 * composing the message (the campaign's templates, the links' tokens), the
 * platform's own code, Node's internals (streams, sockets, timers), garbage
 * collection. A sample counts for the innermost frame that names a part, so
 * a template rendered inside the sender counts as composing, a socket write
 * inside the driver as the driver. bench:mail --profile prints it for each arm.
 * A sample stands for the wall time until the next one: on a busy machine that
 * includes the time the process waits for a core, so the parts are given as
 * shares of the time the event loop was not idle, not as CPU seconds (the
 * bench measures those from /proc).
 */
import type { Profiler } from 'node:inspector';

const PARTS: Array<[part: string, url: RegExp]> = [
  ['database driver', /node_modules\/(mongodb|mongoose|bson)\//],
  ['composing', /node_modules\/handlebars\/|\/server\/(campaigns\/campaign-email\.service|mail\/mail-message|mail\/raw-message|invitations\/invitation\.service|mail\/unsubscribe-token)\.ts/],
  ['nodemailer', /node_modules\/nodemailer\//],
  ["platform's own code", /\/server\//],
];

/** Seconds of samples by part, largest first, and the idle seconds apart. */
export function cpuByPart(profile: Profiler.Profile): { parts: Array<[string, number]>; idle: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const partOfNode = new Map<number, string>();
  const partOf = (id: number): string => {
    let part = partOfNode.get(id);
    if (part !== undefined) return part;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(garbage collector)') part = 'garbage collection';
    else if (frame.functionName === '(idle)') part = 'idle';
    else part = PARTS.find(([, url]) => url.test(frame.url))?.[0];
    if (part === undefined) {
      const parent = parentOf.get(id);
      part = parent === undefined ? "Node's internals" : partOf(parent);
    }
    partOfNode.set(id, part);
    return part;
  };
  const seconds = new Map<string, number>();
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, index) => {
    // A sample stands for the time until the next one.
    const part = partOf(id);
    seconds.set(part, (seconds.get(part) ?? 0) + (deltas[index + 1] ?? 0) / 1e6);
  });
  const idle = seconds.get('idle') ?? 0;
  seconds.delete('idle');
  return { parts: [...seconds].sort(([, a], [, b]) => b - a), idle };
}

/** One line: "nodemailer 52% · database driver 16% · … of 17.2 s not idle (idle 0.8 s)". */
export function summarizeProfile(profile: Profiler.Profile): string {
  const { parts, idle } = cpuByPart(profile);
  const busy = parts.reduce((sum, [, s]) => sum + s, 0);
  const shown = parts.filter(([, s]) => s >= busy / 200);
  return `${shown.map(([part, s]) => `${part} ${((100 * s) / busy).toFixed(0)}%`).join(' · ')} of ${busy.toFixed(1)} s not idle (idle ${idle.toFixed(1)} s)`;
}
