import { readFileSync } from 'node:fs';

/**
 * User + system CPU seconds of a running process, from /proc/<pid>/stat
 * (Linux: utime and stime, in clock ticks of 1/100 s), or undefined once it
 * is gone. The benchmarks print the embedded engine's, a sink's or a child
 * command's CPU beside wall times, which a shared machine's load skews.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    // The command name, in parentheses, may hold spaces: the fields are counted after its closing one.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
