// What a process cost, as the kernel counts it: peak resident memory (VmHWM), CPU time
// (utime + stime) and minor page faults, read from /proc. CPU seconds per process are what
// tell which process saturates on a machine where every replica and client share two cores;
// faults, what growing into memory cost it (a fifth of all CPU on our VMs: performance.md,
// "Session 22").

import { readFileSync } from 'node:fs';

export function peakRssMb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : undefined;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100;

/** /proc/PID/stat's fields after the parenthesised command name (which may contain spaces): field 3 is [0]. */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export function cpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? cpuSecondsOf(fields) : undefined;
}

/** utime + stime of statFields(). */
export function cpuSecondsOf(fields: string[]): number {
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export function minorFaults(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? Number(fields[7]) : undefined;
}
