import type { Profiler } from 'node:inspector';
import { describe, expect, it } from 'vitest';
import { cpuByPart, summarizeProfile } from '../../scripts/cpu-profile-summary.ts';

// A profile as V8 writes it: a call tree of frames, the sampled node of each tick, and the time between ticks.
function profileOf(tree: Array<{ id: number; parent?: number; functionName: string; url: string }>, samples: Array<[id: number, ms: number]>): Profiler.Profile {
  const nodes = tree.map(({ id, functionName, url }) => ({
    id,
    callFrame: { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 },
    children: tree.filter((n) => n.parent === id).map((n) => n.id),
  }));
  return {
    nodes,
    startTime: 0,
    endTime: samples.reduce((t, [, ms]) => t + ms * 1000, 0),
    samples: samples.map(([id]) => id),
    // The first delta precedes the first sample; each later one is the time the previous sample stands for.
    timeDeltas: [0, ...samples.slice(0, -1).map(([, ms]) => ms * 1000)],
  };
}

const file = (path: string) => `file:///work/app/${path}`;

describe('bench:mail --profile', () => {
  it('counts each sample for the innermost frame that names a part, and idle time apart', () => {
    const profile = profileOf(
      [
        { id: 1, functionName: '(root)', url: '' },
        { id: 2, functionName: 'deliver', url: file('server/mail/outbox-sender.service.ts'), parent: 1 },
        { id: 3, functionName: 'renderCampaignEmail', url: file('server/campaigns/campaign-email.service.ts'), parent: 2 },
        { id: 4, functionName: 'ret', url: file('node_modules/handlebars/dist/cjs/handlebars/runtime.js'), parent: 3 },
        { id: 5, functionName: 'sendMail', url: file('node_modules/nodemailer/lib/mailer/index.js'), parent: 2 },
        { id: 6, functionName: 'writeBuffer', url: '', parent: 5 },
        { id: 7, functionName: 'insertMany', url: file('node_modules/mongodb/lib/collection.js'), parent: 2 },
        { id: 8, functionName: 'writeBuffer', url: '', parent: 7 },
        { id: 9, functionName: 'processTicksAndRejections', url: 'node:internal/process/task_queues', parent: 1 },
        { id: 10, functionName: '(garbage collector)', url: '', parent: 1 },
        { id: 11, functionName: '(idle)', url: '', parent: 1 },
      ],
      [
        [2, 1],
        [4, 2],
        [6, 4],
        [8, 3],
        [11, 5],
        [9, 1],
        [10, 1],
        // The last tick has no next one: it stands for no time.
        [1, 0],
      ],
    );

    const { parts, idle } = cpuByPart(profile);
    expect(Object.fromEntries(parts.map(([part, s]) => [part, Math.round(s * 1000)]))).toEqual({
      // A socket write is counted for whoever wrote: the SMTP client here, the driver there.
      nodemailer: 4,
      'database driver': 3,
      // The template runtime inside the sender is composing, not the sender's own code.
      composing: 2,
      "platform's own code": 1,
      "Node's internals": 1,
      'garbage collection': 1,
    });
    expect(idle).toBeCloseTo(0.005);
    expect(summarizeProfile(profile)).toBe(
      "nodemailer 33% · database driver 25% · composing 17% · platform's own code 8% · Node's internals 8% · garbage collection 8% of 0.0 s not idle (idle 0.0 s)",
    );
  });
});
