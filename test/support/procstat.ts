/** CPU time and memory of a process, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node runs on

export interface ProcessSample {
  /** User + system CPU seconds the process has used so far. */
  cpuSeconds: number;
  /** Resident set now, and its high-water mark since the process started (bytes). */
  rssBytes: number;
  peakRssBytes: number;
}

/** The process's CPU and memory now; null once it has exited. */
export function sampleProcess(pid: number): ProcessSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields from the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpuSeconds: (utime + stime) / CLOCK_TICKS_PER_SECOND,
      rssBytes: kilobytes(status, 'VmRSS') * 1024,
      peakRssBytes: kilobytes(status, 'VmHWM') * 1024,
    };
  } catch {
    return null;
  }
}

/** One variable of the environment the process started with (Linux /proc); undefined when unset or gone. */
export function processEnvironment(pid: number, name: string): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith(`${name}=`));
    return entry?.slice(name.length + 1);
  } catch {
    return undefined;
  }
}

function kilobytes(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

/** The processes whose command line (arguments joined by spaces) passes `test`, by pid (Linux /proc). */
export function findProcesses(test: (cmdline: string) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
      if (test(cmdline)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
